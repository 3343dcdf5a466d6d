"""How `hooklab serve` writes to PostgreSQL: batches on an asynchronous connection.

The receiver's loop never waits for the database: a batch is sent and committed while the
next gathers (`GroupCommit`). When PostgreSQL stops answering, writes fail at once with
`StoreUnavailable` (the senders get 503 and Retry-After), and one attempt a second
reconnects, so serving resumes by itself when the database is back.
"""

from __future__ import annotations

import functools
import select
import time
from collections.abc import Iterator, Sequence
from typing import Any

from hooklab.core.outcome import Outcome
from hooklab.store.contract import StoreError, StoreUnavailable
from hooklab.store.pg_connect import (
    CONNECT_TIMEOUT,
    bounded_async,
    require_psycopg,
    text_json,
    unavailable,
)
from hooklab.store.rows import EVENT_INSERT_COLUMNS, REQUEST_COLUMNS, encodable, outcome_rows

RETRY = 1.0  # seconds between attempts to reconnect
MAX_PARAMETERS = 65_535  # in one statement, PostgreSQL's limit
CHUNK = 2_000  # rows per statement when a batch is larger: 12 parameters each
# How long one wait for the server may last. Below the group commit's 10 s, so that a server
# that accepts and never answers fails the write here, at once, rather than through a
# cancelled task (which psycopg follows with a cancel request and another wait).
ANSWER_WITHIN = 8.0


@functools.lru_cache(maxsize=512)
def batch_statement(requests: int, events: int) -> str:
    """One statement that stores `requests` request rows and `events` event rows, with
    PostgreSQL's own `$n` placeholders: in autocommit it is its own transaction, so a batch is
    one message and one round trip, with no BEGIN or COMMIT of its own, and psycopg need not
    parse its text. The outbox's statement-level trigger runs once a batch."""
    store_requests = f"INSERT INTO requests ({REQUEST_COLUMNS}) VALUES {_values(requests, 1)}"
    if not events:
        return store_requests
    return (
        f"WITH stored_requests AS ({store_requests}) "
        f"INSERT INTO events ({EVENT_INSERT_COLUMNS}) VALUES {_values(events, 1 + 12 * requests)}"
    )


def _values(rows: int, first: int) -> str:
    return ", ".join(
        "(" + ", ".join(f"${first + 12 * row + column}" for column in range(12)) + ")"
        for row in range(rows)
    )


def batches(
    requests: Sequence[tuple[Any, ...]], events: Sequence[tuple[Any, ...]]
) -> Iterator[tuple[str, list[Any]]]:
    """The statements that store a batch, with their flattened parameters: one, unless the
    batch is larger than a statement's 65,535 parameters allow."""
    if not requests and not events:
        return
    if (len(requests) + len(events)) * 12 <= MAX_PARAMETERS:
        yield _statement(requests, events)
        return
    for start in range(0, len(requests), CHUNK):
        yield _statement(requests[start : start + CHUNK], [])
    for start in range(0, len(events), CHUNK):
        yield _statement([], events[start : start + CHUNK])


def _statement(
    requests: Sequence[tuple[Any, ...]], events: Sequence[tuple[Any, ...]]
) -> tuple[str, list[Any]]:
    if not requests:
        sql = f"INSERT INTO events ({EVENT_INSERT_COLUMNS}) VALUES {_values(len(events), 1)}"
    else:
        sql = batch_statement(len(requests), len(events))
    return sql, [pg_text(value) for row in (*requests, *events) for value in row]


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
    """Writes batches of outcomes, one transaction each, on asynchronous connections: up to
    `parallel` batches at once, each on a connection of its own."""

    parallel = 4  # batches in flight: one reaching the disk while the next is sent

    def __init__(self, url: str, where: str) -> None:
        self._psycopg = require_psycopg()
        self.url = url
        self.where = where
        self._idle: list[Any] = []  # open connections no write is using
        self._open: set[Any] = set()
        self._down: StoreError | None = None
        self._next_attempt = 0.0

    def write(self, outcomes: Sequence[Outcome]) -> Any:
        return self._write(outcome_rows(list(outcomes), _same, bool))

    async def _write(self, rows: tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]) -> None:
        statements = list(batches(*rows))
        connection = await self._acquire()
        try:
            try:
                await self._send(connection, statements)
            except UnicodeEncodeError:  # before anything was sent: a lone surrogate
                fixed = [(sql, [encodable(v) for v in params]) for sql, params in statements]
                await self._send(connection, fixed)
        except self._psycopg.OperationalError as exc:
            # This connection only: the batches in flight on the others are theirs to finish
            # (closing them would answer 503 for requests their commits then store).
            self._drop(connection)
            raise _unavailable(self.where, self.url, exc) from None
        finally:
            self._release(connection)

    async def _send(self, connection: Any, statements: list[tuple[str, list[Any]]]) -> None:
        if len(statements) <= 1:  # the usual case: one statement, its own transaction
            for sql, params in statements:
                await self._raw(connection).execute(sql, params)
            return
        async with connection.transaction(), self._raw(connection) as cursor:
            for sql, params in statements:
                await cursor.execute(sql, params)

    def _raw(self, connection: Any) -> Any:
        """A cursor that takes `$n` placeholders as they are (no parsing of the text)."""
        return self._psycopg.AsyncRawCursor(connection)

    async def _acquire(self) -> Any:
        """An open connection that no other write is using: an idle one, or a new one."""
        while self._idle:
            connection = self._idle.pop()
            if not connection.closed and not connection.broken and not _said_goodbye(connection):
                return connection
            self._drop(connection)
        if self._down is not None and time.monotonic() < self._next_attempt:
            raise self._down  # the same error, at once, until the next attempt is due
        try:
            connection = await bounded_async(self._psycopg).connect(
                self.url,
                autocommit=True,
                connect_timeout=CONNECT_TIMEOUT,
                application_name="hooklab serve",
            )
        except self._psycopg.Error as exc:
            # No connection to be had: every write fails at once until the next attempt.
            self._down = _unavailable(self.where, self.url, exc)
            self._next_attempt = time.monotonic() + RETRY
            for idle in self._idle:  # most likely lost too; those in flight finish first
                self._drop(idle)
            self._idle = []
            raise self._down from None
        connection.answer_within = ANSWER_WITHIN
        text_json(connection)
        self._open.add(connection)
        self._down = None
        return connection

    def _release(self, connection: Any) -> None:
        if connection in self._open and not connection.closed and not connection.broken:
            self._idle.append(connection)
        else:
            self._drop(connection)

    def _drop(self, connection: Any) -> None:
        self._open.discard(connection)
        _finish(connection)

    def written(self, count: int) -> None:
        pass

    def tick(self) -> None:
        pass

    async def ping(self) -> None:
        connection = await self._acquire()
        try:
            await connection.execute("SELECT 1")
        except self._psycopg.OperationalError as exc:
            self._drop(connection)
            raise _unavailable(self.where, self.url, exc) from None
        finally:
            self._release(connection)

    def close(self) -> None:
        connections, self._open, self._idle = self._open, set(), []
        for connection in connections:
            _finish(connection)


def _unavailable(where: str, url: str, exc: Exception) -> StoreUnavailable:
    """The one line for a write that could not reach the store (a refusal included: there is
    still nothing to write with)."""
    error = unavailable(where, url, exc)
    return error if isinstance(error, StoreUnavailable) else StoreUnavailable(str(error))


def _said_goodbye(connection: Any) -> bool:
    """Whether the server has closed an idle connection (restarted, `idle_session_timeout`,
    `pg_terminate_backend`): it then sends an error or closes the socket, so there is
    something to read where an idle connection has nothing. Using it would fail the batch."""
    try:
        readable, _, _ = select.select([connection.pgconn.socket], [], [], 0)
    except Exception:  # no socket to ask: a closed connection
        return True
    return bool(readable)


def _finish(connection: Any) -> None:
    if not connection.closed:
        connection.pgconn.finish()  # no loop needed: the socket is closed now
