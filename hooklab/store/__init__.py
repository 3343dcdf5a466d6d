"""Where hooklab keeps everything: one contract (`contract`), two backends, opened by URL.

>>> store = open_store(":memory:")
>>> store.location
':memory:'
"""

from __future__ import annotations

import os
import re
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


def without_password(target: str) -> str:
    """A store's URL with any password it holds taken out (as user:password, or ?password=)."""
    if not holds_password(target):
        return target
    scheme, rest = target.split("://", 1)
    at = rest.rfind("@")
    if at >= 0 and ":" in rest[:at]:
        rest = rest[:at].split(":", 1)[0] + rest[at:]
    rest = re.sub(r"([?&])password=[^&]*&?", r"\1", rest).rstrip("?&")
    return f"{scheme}://{rest}"


def schema_steps() -> list[str]:
    """The named steps of the schema this hooklab knows: the same on both backends."""
    from hooklab.store.migrations import MIGRATIONS

    return [name for name, _ in MIGRATIONS]


def open_store(target: str | os.PathLike[str]) -> Store:
    """A store by its name: a `postgresql://` URL, or a SQLite file (`:memory:` included).
    Raises `StoreError` in one line (never showing a password) when it cannot be opened."""
    if is_postgres(target):
        from hooklab.store.postgres import PostgresStore

        return PostgresStore(str(target))
    from hooklab.store.sqlite import SqliteStore

    return SqliteStore(os.fspath(target))
