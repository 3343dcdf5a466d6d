"""How `hooklab serve` writes to PostgreSQL: batches on an asynchronous connection.

The receiver's loop never waits for the database: a batch is sent and committed while the
next gathers (`GroupCommit`). When PostgreSQL stops answering, writes fail at once with
`StoreUnavailable` (the senders get 503 and Retry-After), and one attempt a second
reconnects, so serving resumes by itself when the database is back.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Iterator, Sequence
from typing import Any

from hooklab.core.outcome import Outcome
from hooklab.store.contract import StoreError, StoreUnavailable
from hooklab.store.pg_connect import CONNECT_TIMEOUT, require_psycopg, text_json, unavailable
from hooklab.store.rows import EVENT_INSERT_COLUMNS, REQUEST_COLUMNS, outcome_rows

RETRY = 1.0  # seconds between attempts to reconnect
CHUNK = 2_000  # rows per statement: 12 parameters each, well below PostgreSQL's 65,535


@functools.lru_cache(maxsize=256)
def insert_rows(table: str, count: int) -> str:
    """One INSERT of `count` rows: one statement per table and batch, so the outbox's
    trigger runs once per batch, and the batch travels in one message."""
    columns = REQUEST_COLUMNS if table == "requests" else EVENT_INSERT_COLUMNS
    row = "(" + ", ".join(["%s"] * 12) + ")"
    return f"INSERT INTO {table} ({columns}) VALUES " + ", ".join([row] * count)


def statements(table: str, rows: Sequence[tuple[Any, ...]]) -> Iterator[tuple[str, list[Any]]]:
    """The INSERTs that store `rows`, with their flattened parameters."""
    for start in range(0, len(rows), CHUNK):
        part = rows[start : start + CHUNK]
        yield insert_rows(table, len(part)), [pg_text(value) for row in part for value in row]


def pg_text(value: Any) -> Any:
    """`value`, with a NUL character (which PostgreSQL's text refuses, and SQLite keeps) shown
    as U+FFFD: a sender can put one in a template's output, and its request is kept as on
    SQLite rather than refused for good as if the store were down."""
    if isinstance(value, str) and "\x00" in value:
        return value.replace("\x00", "\ufffd")
    return value


def _same(value: Any) -> Any:
    return value


class PostgresWriter:
    """Writes batches of outcomes, one transaction each, on one asynchronous connection."""

    def __init__(self, url: str, where: str) -> None:
        self._psycopg = require_psycopg()
        self.url = url
        self.where = where
        self._connection: Any = None
        self._down: StoreError | None = None
        self._next_attempt = 0.0

    def write(self, outcomes: Sequence[Outcome]) -> Any:
        return self._write(outcome_rows(list(outcomes), _same, bool))

    async def _write(self, rows: tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]) -> None:
        requests, events = rows
        connection = await self._connect()
        try:
            # In a pipeline: BEGIN, the INSERTs and COMMIT go out together and their results
            # come back together, one round trip a batch instead of one a statement.
            async with (
                connection.pipeline(),
                connection.transaction(),
                connection.cursor() as cursor,
            ):
                for table, rows_of in (("requests", requests), ("events", events)):
                    for sql, params in statements(table, rows_of):
                        await cursor.execute(sql, params)
        except self._psycopg.OperationalError as exc:
            raise self._lost(exc) from None

    async def _connect(self) -> Any:
        connection = self._connection
        if connection is not None and not connection.closed and not connection.broken:
            return connection
        if self._down is not None and time.monotonic() < self._next_attempt:
            raise self._down  # the same error, at once, until the next attempt is due
        try:
            connection = await self._psycopg.AsyncConnection.connect(
                self.url,
                autocommit=True,
                connect_timeout=CONNECT_TIMEOUT,
                application_name="hooklab serve",
            )
        except self._psycopg.Error as exc:
            raise self._lost(exc) from None
        text_json(connection)
        self._connection, self._down = connection, None
        return connection

    def _lost(self, exc: Exception) -> StoreError:
        error = unavailable(self.where, self.url, exc)
        if not isinstance(error, StoreUnavailable):  # refused: still nothing to write with
            error = StoreUnavailable(str(error))
        self._down = error
        self._next_attempt = time.monotonic() + RETRY
        self.close()
        return error

    def written(self, count: int) -> None:
        pass

    def tick(self) -> None:
        pass

    async def ping(self) -> None:
        connection = await self._connect()
        try:
            await connection.execute("SELECT 1")
        except self._psycopg.OperationalError as exc:
            raise self._lost(exc) from None

    def close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None and not connection.closed:
            connection.pgconn.finish()  # no loop needed: the socket is closed now
