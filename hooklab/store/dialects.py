"""What differs between the stores' SQL, for the readout: SQLite's and PostgreSQL's dialects.

Both read the same tables and columns (PostgreSQL with native types: timestamptz, boolean,
json, bytea). The queries are written with `?` for each parameter; PostgreSQL numbers them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from hooklab.core.errors import InvalidInput
from hooklab.core.times import iso
from hooklab.store.filters import EVERYTHING, HistoryFilter


@dataclass(frozen=True)
class Reading:
    """What a read selects: a filter (its webhook an id), the `limit` most recent rows (the
    oldest with `oldest`), and the order rows come in (oldest first unless `newest_first`)."""

    where: HistoryFilter = EVERYTHING
    limit: int | None = None
    newest_first: bool = False
    oldest: bool = False

    def __post_init__(self) -> None:
        if self.limit is not None and self.limit < 0:
            raise InvalidInput(
                f"limit must be 0 or more (the most recent rows to keep), not {self.limit}"
            )


class SQLite:
    """SQLite's SQL, through ADBC's SQLite driver (or sqlite3, for small reads)."""

    name = "sqlite"
    # SQLite's driver types each column from the first rows it reads: a query starts with a
    # row of each column's type (see `readout.select`).
    typed_first_row = True
    time_param = "?"

    def sql(self, text: str) -> str:
        """The query as the driver takes it."""
        return text

    def failed(self, value: bool) -> str:
        # A constant, so that SQLite knows the failures' index fits.
        return f"failed = {int(value)}"

    def size(self) -> str:
        return "length(r.body)"

    def rows(self, table: str, alias: str, reading: Reading) -> tuple[str, list[Any]]:
        """The condition that selects a reading's rows of `table` (as `alias`).

        The filter picks row numbers from an index (by time, by webhook and time, failures by
        time) into a list SQLite keeps sorted, and the rows are then read by number, in order:
        the last hour of a year reads an hour, and nothing is sorted."""
        clauses, params = conditions(self, table, reading.where)
        if not clauses and reading.limit is None:
            return "TRUE", []
        sql = f"SELECT seq FROM {table}{where_sql(clauses)}"
        if reading.limit is not None:
            sql += f" ORDER BY seq{'' if reading.oldest else ' DESC'} LIMIT {int(reading.limit)}"
        return f"{alias}.seq IN ({sql})", params


class PostgreSQL(SQLite):
    """PostgreSQL's SQL, through ADBC's PostgreSQL driver in this process."""

    name = "postgresql"
    typed_first_row = False  # the server types every column
    time_param = "?::timestamptz"

    def sql(self, text: str) -> str:
        numbers = iter(range(1, text.count("?") + 1))
        return re.sub(r"\?", lambda _: f"${next(numbers)}", text)

    def failed(self, value: bool) -> str:
        return "failed" if value else "NOT failed"

    def size(self) -> str:
        return "octet_length(r.body)"


def dialect_of(location: str) -> SQLite:
    """The dialect of a store named by `location`: a PostgreSQL URL, or a SQLite file."""
    if location.startswith(("postgresql://", "postgres://")):
        return PostgreSQL()
    return SQLite()


def conditions(dialect: SQLite, table: str, where: HistoryFilter) -> tuple[list[str], list[Any]]:
    """SQL conditions of a filter on `table`; on requests, the event name and `failed` keep
    the requests that produced such events."""
    clauses: list[str] = []
    params: list[Any] = []
    if where.webhook is not None:
        clauses.append("webhook_id = ?")
        params.append(where.webhook)
    if where.since is not None:
        clauses.append(f"received >= {dialect.time_param}")
        params.append(iso(where.since))
    if where.until is not None:
        clauses.append(f"received < {dialect.time_param}")
        params.append(iso(where.until))
    produced: list[str] = []
    if where.event is not None:
        produced.append("event = ?")
        params.append(where.event)
    if where.failed is not None:
        produced.append(dialect.failed(where.failed))
    if produced and table == "requests":
        clauses.append(f"id IN (SELECT request_id FROM events{where_sql(produced)})")
    else:
        clauses.extend(produced)
    return clauses, params


def where_sql(clauses: Sequence[str]) -> str:
    return f" WHERE {' AND '.join(clauses)}" if clauses else ""
