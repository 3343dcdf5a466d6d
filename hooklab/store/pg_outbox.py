"""PostgreSQL's forwarding outbox, shared by every replica that forwards.

The queue is the `outbox` table: one row per event and destination, added by a trigger in the
transaction that stores the event. A replica claims the oldest rows for a lease
(`FOR UPDATE SKIP LOCKED`, so two replicas never claim the same row), sends them, and deletes
them once Prefect has stored them. A replica killed with claims in hand loses nothing: its
lease runs out and another claims the rows. A replica that is alive renews its claims' lease
while it holds them (a thread, every third of a lease), so a delivery slower than a lease is
not taken over and sent twice; a replica that is killed or frozen renews nothing. Delivery
stays at least once, and Prefect keeps an event id once.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import uuid
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any, NamedTuple

from hooklab.core.errors import StoreError
from hooklab.core.times import utcnow
from hooklab.store.batches import PREFECT_COLUMNS, outbox_batch
from hooklab.store.contract import Destination, OutboxBatch
from hooklab.store.filters import HistoryFilter
from hooklab.store.pg_connect import ANSWER_TIMEOUT, connect, require_psycopg, unavailable
from hooklab.store.rows import destination_from, history_conditions, where_sql

LEASE_SECONDS = 60  # unless $HOOKLAB_OUTBOX_LEASE says otherwise


class DestinationRow(NamedTuple):
    """A row of forward_destinations, as PostgreSQL keeps it (its pending events are the
    outbox table's rows)."""

    url: str
    delivered: int
    rejected: int
    last_delivered: datetime | None
    last_error: str | None
    last_error_at: datetime | None
    created: datetime


DESTINATION_COLUMNS = ", ".join(DestinationRow._fields)

CLAIM = """
WITH picked AS (
    SELECT seq FROM outbox
    WHERE url = %(url)s AND seq > %(after)s
      AND (claimed_by IS NULL OR claimed_by = %(me)s OR claimed_until < now())
    ORDER BY seq LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
)
UPDATE outbox SET claimed_by = %(me)s, claimed_until = now() + make_interval(secs => %(lease)s)
FROM picked WHERE outbox.url = %(url)s AND outbox.seq = picked.seq
RETURNING outbox.seq
"""


def lease_seconds() -> float:
    """How long a claim holds: $HOOKLAB_OUTBOX_LEASE seconds, else LEASE_SECONDS; a value
    that is not a positive number is a StoreError (the store is opened with it, so that
    `hooklab serve` stops at once with one line)."""
    value = os.environ.get("HOOKLAB_OUTBOX_LEASE", "").strip()
    if not value:
        return LEASE_SECONDS
    try:
        seconds = float(value)
    except ValueError:
        seconds = 0.0
    if not 0 < seconds < float("inf"):
        raise StoreError(
            f"HOOKLAB_OUTBOX_LEASE must be a positive number of seconds, not {value!r}"
        )
    return seconds


def _same(value: Any) -> Any:
    return value


class PostgresOutbox:
    """The outbox, on a connection of its own; `claimer` names this process's claims."""

    def __init__(self, url: str, where: str) -> None:
        self._psycopg = require_psycopg()
        self.url = url
        self.location = where
        self.lease = lease_seconds()
        self.claimer = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._lock = threading.RLock()
        self._db = connect(url, answer_within=ANSWER_TIMEOUT)
        self._closing = threading.Event()
        self._renewer: threading.Thread | None = None

    def __repr__(self) -> str:
        return f"PostgresOutbox({self.location!r})"

    def _renew_while_open(self) -> None:
        """Push this process's claims' lease forward while the connection is open."""
        while not self._closing.wait(self.lease / 3):
            with self._lock:
                if self._db.closed or self._db.broken:
                    return  # lost: its claims run out, as a dead replica's do
                with contextlib.suppress(self._psycopg.Error):
                    self._db.execute(
                        "UPDATE outbox SET claimed_until = now() + make_interval(secs => %s) "
                        "WHERE claimed_by = %s",
                        (self.lease, self.claimer),
                    )

    def close(self) -> None:
        self._closing.set()
        with self._lock:
            if not self._db.closed and not self._db.broken:
                with contextlib.suppress(self._psycopg.Error):  # else the leases run out
                    self._db.execute(
                        "UPDATE outbox SET claimed_by = NULL, claimed_until = NULL "
                        "WHERE claimed_by = %s",
                        (self.claimer,),
                    )
            self._db.close()

    def _query(self, sql: str, params: Any = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            for attempt in (1, 2):  # once more on a connection lost since the last call
                try:
                    if self._db.closed or self._db.broken:
                        self._db.close()
                        self._db = connect(self.url, answer_within=ANSWER_TIMEOUT)
                    cursor = self._db.execute(sql, params)
                    return cursor.fetchall() if cursor.description else []
                except self._psycopg.OperationalError as exc:
                    if attempt == 2 or not self._db.broken:
                        raise unavailable(self.location, self.url, exc) from None
            raise AssertionError("unreachable")

    def add(self, url: str, *, now: datetime | None = None) -> Destination:
        self._query(
            "INSERT INTO forward_destinations (url, created) VALUES (%s, %s) "
            "ON CONFLICT (url) DO NOTHING",
            (url, now or utcnow()),
        )
        found = self.get(url)
        assert found is not None
        return found

    def remove(self, url: str) -> int | None:
        """Stop forwarding to `url`; how many pending events were dropped (None: no such
        destination). Its outbox rows go with it (ON DELETE CASCADE), claimed ones too: a
        replica sending them finds nothing left to mark."""
        rows = self._query(
            "WITH gone AS (DELETE FROM forward_destinations WHERE url=%s RETURNING url) "
            "SELECT (SELECT count(*) FROM outbox WHERE url=%s) FROM gone",
            (url, url),
        )
        return int(rows[0][0]) if rows else None

    def get(self, url: str) -> Destination | None:
        rows = self._query(
            f"SELECT {DESTINATION_COLUMNS} FROM forward_destinations WHERE url=%s", (url,)
        )
        return self._with_pending(rows[0]) if rows else None

    def destinations(self) -> list[Destination]:
        rows = self._query(
            f"SELECT {DESTINATION_COLUMNS} FROM forward_destinations ORDER BY created, url"
        )
        return [self._with_pending(row) for row in rows]

    def urls(self) -> list[str]:
        return [r[0] for r in self._query("SELECT url FROM forward_destinations ORDER BY url")]

    def _with_pending(self, values: Sequence[Any]) -> Destination:
        row = DestinationRow._make(values)
        pending, oldest = self._query(
            "SELECT count(*), (SELECT e.received FROM events e WHERE e.seq = "
            "(SELECT min(seq) FROM outbox WHERE url = %s)) FROM outbox WHERE url = %s",
            (row.url, row.url),
        )[0]
        return destination_from(row, pending, oldest)

    def has_pending(self, url: str) -> bool:
        return bool(self._query("SELECT 1 FROM outbox WHERE url=%s LIMIT 1", (url,)))

    def next_batch(
        self, url: str, *, limit: int, max_bytes: int, after: int | None = None
    ) -> OutboxBatch | None:
        """Claim the oldest events pending for `url` past seq `after` (none: from the first;
        this process's own claims are handed out again) and return them. Claimed rows that do
        not fit `max_bytes` stay claimed, and come first next time."""
        with self._lock:
            claimed = self._query(
                CLAIM,
                {
                    "url": url,
                    "after": after or 0,
                    "me": self.claimer,
                    "limit": limit,
                    "lease": self.lease,
                },
            )
            if not claimed:
                return None
            if self._renewer is None:
                self._renewer = threading.Thread(
                    target=self._renew_while_open, name="hooklab-lease", daemon=True
                )
                self._renewer.start()
            rows = self._query(
                f"SELECT {PREFECT_COLUMNS} FROM events WHERE seq = ANY(%s) ORDER BY seq",
                ([r[0] for r in claimed],),
            )
        return outbox_batch(rows, max_bytes)

    def delivered(self, url: str, batch: OutboxBatch, *, rejected: int = 0) -> None:
        """Prefect stored everything this process sent up to `batch.last_seq`: its claims so
        far are done."""
        with self._lock:
            self._query(
                "WITH done AS (DELETE FROM outbox WHERE url = %(url)s AND claimed_by = %(me)s "
                "AND seq <= %(last)s RETURNING 1) "
                "UPDATE forward_destinations SET "
                "delivered = delivered + greatest((SELECT count(*) FROM done) - %(rejected)s, 0),"
                " rejected = rejected + %(rejected)s, last_delivered = now() WHERE url = %(url)s",
                {"url": url, "me": self.claimer, "last": batch.last_seq, "rejected": rejected},
            )

    def release(self, url: str) -> None:
        self._query(
            "UPDATE outbox SET claimed_by = NULL, claimed_until = NULL "
            "WHERE url = %s AND claimed_by = %s",
            (url, self.claimer),
        )

    def failed(self, url: str, error: str) -> None:
        self._query(
            "UPDATE forward_destinations SET last_error = %s, last_error_at = now() WHERE url = %s",
            (error, url),
        )

    def history(self, where: HistoryFilter, *, limit: int, max_bytes: int) -> Iterator[OutboxBatch]:
        clauses, params = history_conditions(where, _same, bool, "%s")
        sql = (
            f"SELECT {PREFECT_COLUMNS} FROM events"
            f"{where_sql(['seq > %s', *clauses])} ORDER BY seq LIMIT %s"
        )
        after = 0
        while True:
            batch = outbox_batch(self._query(sql, [after, *params, limit]), max_bytes)
            if batch is None:
                return
            yield batch
            after = batch.last_seq
