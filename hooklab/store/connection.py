"""One SQLite connection and its lock, shared by the Store and the forwarding outbox."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from hooklab.core.errors import NotWritable


class Connected:
    """One SQLite connection and the lock its users take turns with: reads, and transactions
    that roll back on any error. The Store and the forwarding outbox each hold one."""

    path: str
    _db: sqlite3.Connection
    _lock: threading.RLock
    read_only: str | None = None  # why the file cannot be written, when it cannot

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        if self.read_only is not None:
            raise NotWritable(self.read_only)
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._db.execute(sql, params).fetchall()

    def open_file(self) -> str | None:
        """The file this connection has open, by its absolute path (the working directory may
        have changed since it opened: `%cd` in a notebook); None for a database in memory,
        which another connection would not see."""
        for _seq, name, file in self._query("PRAGMA database_list"):
            if name == "main":
                return str(file) or None
        return None
