"""Where hooklab keeps everything: one contract (`contract`), two backends, opened by URL.

>>> store = open_store(":memory:")
>>> store.location
':memory:'
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hooklab.store.contract import Store

POSTGRES_SCHEMES = ("postgresql://", "postgres://")


def is_postgres(target: str | os.PathLike[str]) -> bool:
    return str(target).startswith(POSTGRES_SCHEMES)


def holds_password(target: str | os.PathLike[str]) -> bool:
    """Whether a store's URL carries a password itself (not PGPASSWORD or ~/.pgpass)."""
    if not is_postgres(target):
        return False
    from hooklab.store.pg_connect import written_password

    return written_password(str(target))


def open_store(target: str | os.PathLike[str]) -> Store:
    """A store by its name: a `postgresql://` URL, or a SQLite file (`:memory:` included).
    Raises `StoreError` in one line (never showing a password) when it cannot be opened."""
    if is_postgres(target):
        from hooklab.store.postgres import PostgresStore

        return PostgresStore(str(target))
    from hooklab.store.sqlite import SqliteStore

    return SqliteStore(os.fspath(target))
