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


def open_store(target: str | os.PathLike[str]) -> Store:
    """A store by its name: a `postgresql://` URL, or a SQLite file (`:memory:` included).
    Raises `StoreError` in one line (never showing a password) when it cannot be opened."""
    if is_postgres(target):
        from hooklab.store.postgres import PostgresStore

        return PostgresStore(str(target))
    from hooklab.store.sqlite import SqliteStore

    return SqliteStore(os.fspath(target))
