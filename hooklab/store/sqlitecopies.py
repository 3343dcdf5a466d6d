"""Two copies of SQLite in one process, taking turns on each file.

Python's sqlite3 and ADBC's SQLite driver each carry their own copy of SQLite. POSIX locks
belong to the process, and closing any descriptor of a file releases every lock the process
holds on it: two copies with the same file open break each other's locks (SQLite's "How To
Corrupt An SQLite Database File", section 2.2.1), and through the -shm file another process
could even truncate a file this one has mapped. Within one copy, SQLite keeps its own
descriptors apart; across copies, nothing does.

So the copies take turns on each file. Every sqlite3 connection hooklab opens is opened here
(`open_sqlite3`) and counted until it closes; ADBC's driver reads a file in this process
(`adbc_turn`) only when no such connection is open and no descriptor of this process refers
to the file, its -wal or its -shm (which also finds a connection opened by other code). While
that read runs, a sqlite3 connection to the file waits to open until it ends. Where the
driver cannot have its turn, the read goes to a helper process (`hooklab.store.snapshots`).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from collections.abc import Iterator
from typing import Any

_turns = threading.Condition()
_sqlite3: dict[str, int] = {}  # per file, hooklab's sqlite3 connections open
_adbc: dict[str, int] = {}  # per file, ADBC reads under way in this process
# Where this process's open descriptors are listed (Linux's, or a BSD's and macOS's).
_DESCRIPTORS = ("/proc/self/fd", "/dev/fd")


def file_key(path: str) -> str | None:
    """The file a path names, as both sides count it (None: a database in memory). A path is
    a file's name, never a URI: one that starts with "file:" names such a file."""
    if not path or path == ":memory:":
        return None
    return os.path.realpath(path)


class CountedConnection(sqlite3.Connection):
    """A sqlite3 connection counted as open on its file until it is closed (by `close`, or
    when it is collected)."""

    _file: str | None = None

    def close(self) -> None:
        super().close()  # raises, and stays counted, if it could not close
        file, self._file = self._file, None
        if file is not None:
            _give_back(_sqlite3, file)

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.close()


def open_sqlite3(path: str, database: str | None = None, **options: Any) -> sqlite3.Connection:
    """A sqlite3 connection to the file at `path` (opened as `database`, a URI, when given),
    counted while open; it waits while ADBC's driver reads the file in this process."""
    file = file_key(path)
    if file is None:
        return sqlite3.connect(database or path, factory=CountedConnection, **options)
    with _turns:
        _turns.wait_for(lambda: not _adbc.get(file))
        _sqlite3[file] = _sqlite3.get(file, 0) + 1
    try:
        db = sqlite3.connect(database or path, factory=CountedConnection, **options)
    except BaseException:
        _give_back(_sqlite3, file)
        raise
    assert isinstance(db, CountedConnection)
    db._file = file
    return db


@contextlib.contextmanager
def adbc_turn(path: str) -> Iterator[bool]:
    """Whether ADBC's driver may read the file at `path` in this process now: True when
    nothing in the process has it open; then, until the block ends, no sqlite3 connection
    opens on it (they wait)."""
    file = file_key(path)
    if file is None:
        yield False
        return
    with _turns:
        free = not _sqlite3.get(file) and not _open_here(file)
        if free:
            _adbc[file] = _adbc.get(file, 0) + 1
    try:
        yield free
    finally:
        if free:
            _give_back(_adbc, file)


def sqlite3_open(path: str) -> int:
    """How many of hooklab's sqlite3 connections to the file are open in this process."""
    file = file_key(path)
    with _turns:
        return _sqlite3.get(file, 0) if file else 0


def _give_back(counts: dict[str, int], file: str) -> None:
    with _turns:
        left = counts.get(file, 0) - 1
        if left > 0:
            counts[file] = left
        else:
            counts.pop(file, None)
            _turns.notify_all()


def _open_here(file: str) -> bool:
    """Whether any descriptor of this process refers to the file, its -wal or its -shm; True
    when the process's descriptors cannot be listed (then no one can tell)."""
    files = set()
    for suffix in ("", "-wal", "-shm"):
        try:
            found = os.stat(file + suffix)
        except OSError:
            continue
        files.add((found.st_dev, found.st_ino))
    if not files:
        return False
    for folder in _DESCRIPTORS:
        try:
            descriptors = os.listdir(folder)
        except OSError:
            continue
        for name in descriptors:
            try:
                found = os.fstat(int(name))
            except (OSError, ValueError):  # closed since, or the listing's own
                continue
            if (found.st_dev, found.st_ino) in files:
                return True
        return False
    return True
