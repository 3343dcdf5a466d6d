"""SQLite's forwarding outbox: destinations, what each still has to send, and its state.

The events table is the queue. A destination keeps a mark, `after_seq`: every event stored
with a higher seq is pending for it. The transaction that stores an event therefore enqueues
it for every destination, failed events included, and the receiver writes nothing more.
Delivery moves the mark forward only after Prefect took a batch, so a crash or an outage
sends a batch again (at least once); Prefect ignores an event id it already has.

>>> from hooklab.store.sqlite import SqliteStore
>>> outbox = SqliteStore(":memory:").outbox()
>>> outbox.add("http://127.0.0.1:4200/api").pending
0
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any, NamedTuple

from hooklab.core.times import iso, utcnow
from hooklab.store.batches import PREFECT_COLUMNS, outbox_batch
from hooklab.store.connection import Connected
from hooklab.store.contract import Destination, OutboxBatch
from hooklab.store.filters import HistoryFilter
from hooklab.store.rows import destination_from, history_conditions
from hooklab.store.sqlitefile import connect

__all__ = ["SqliteOutbox"]


class DestinationRow(NamedTuple):
    """A row of forward_destinations, as SQLite keeps it (times as ISO text)."""

    url: str
    after_seq: int  # the newest event sent or given up on
    delivered: int
    rejected: int
    last_delivered: str | None
    last_error: str | None
    last_error_at: str | None
    created: str


DESTINATION_COLUMNS = ", ".join(DestinationRow._fields)


class SqliteOutbox(Connected):
    """The outbox of one store. It reads and writes on a connection of its own (the same file),
    so a forwarder thread never waits for the receiver's writer, nor the writer for it."""

    def __init__(self, store: Connected) -> None:
        self.path = self.location = store.path
        self.read_only = store.read_only
        if store.path == ":memory:" or store.read_only is not None:
            # another connection would see another database, or could not open a read-only one
            self._db, self._lock, self._own = store._db, store._lock, False
        else:
            # The file the store has open, by its absolute path: the working directory may
            # have changed since (`%cd` in a notebook).
            self._db = connect(store.open_file() or store.path)
            self._db.execute("PRAGMA busy_timeout=5000")
            self._lock, self._own = threading.RLock(), True

    def close(self) -> None:
        if self._own:
            with self._lock:
                self._db.close()

    def add(self, url: str, *, now: datetime | None = None) -> Destination:
        """Forward to `url` every event stored from now on (a URL already added keeps its
        place)."""
        stamp = iso(now) if now is not None else _now()
        with self.transaction() as db:
            db.execute(
                "INSERT INTO forward_destinations (url, after_seq, created) "
                "SELECT ?, coalesce(max(seq), 0), ? FROM events "
                "WHERE true ON CONFLICT(url) DO NOTHING",
                (url, stamp),
            )
        found = self.get(url)
        assert found is not None
        return found

    def remove(self, url: str) -> int | None:
        """Stop forwarding to `url`; how many pending events were dropped (None: no such
        destination). Its pending events are those past its mark: dropping the mark drops them."""
        with self.transaction() as db:
            found = db.execute(
                "SELECT (SELECT count(*) FROM events WHERE seq > d.after_seq) "
                "FROM forward_destinations d WHERE d.url=?",
                (url,),
            ).fetchone()
            if found is None:
                return None
            db.execute("DELETE FROM forward_destinations WHERE url=?", (url,))
            return int(found[0])

    def get(self, url: str) -> Destination | None:
        rows = self._query(
            f"SELECT {DESTINATION_COLUMNS} FROM forward_destinations WHERE url=?", (url,)
        )
        return self._with_pending(rows[0]) if rows else None

    def destinations(self) -> list[Destination]:
        """Every destination with its pending count, oldest first."""
        rows = self._query(
            f"SELECT {DESTINATION_COLUMNS} FROM forward_destinations ORDER BY created, url"
        )
        return [self._with_pending(row) for row in rows]

    def urls(self) -> list[str]:
        return [r[0] for r in self._query("SELECT url FROM forward_destinations ORDER BY url")]

    def _with_pending(self, values: Sequence[Any]) -> Destination:
        row = DestinationRow._make(values)
        after = int(row.after_seq)
        pending, oldest = self._query(
            "SELECT count(*), (SELECT received FROM events WHERE seq > ? ORDER BY seq LIMIT 1) "
            "FROM events WHERE seq > ?",
            (after, after),
        )[0]
        return destination_from(row, pending, oldest)

    def has_pending(self, url: str) -> bool:
        rows = self._query(
            "SELECT 1 FROM events WHERE seq > "
            "(SELECT after_seq FROM forward_destinations WHERE url=?) LIMIT 1",
            (url,),
        )
        return bool(rows)

    def next_batch(
        self, url: str, *, limit: int, max_bytes: int, after: int | None = None
    ) -> OutboxBatch | None:
        """The oldest pending events for `url` (or those after seq `after`, sent already but
        not yet delivered): at most `limit`, and no more than `max_bytes` of JSON unless one
        event alone is larger. None when nothing is pending."""
        rows = self._query(
            f"SELECT {PREFECT_COLUMNS} FROM events WHERE seq > coalesce(?, "
            "(SELECT after_seq FROM forward_destinations WHERE url=?)) ORDER BY seq LIMIT ?",
            (after, url, limit),
        )
        return outbox_batch(rows, max_bytes)

    def delivered(self, url: str, batch: OutboxBatch, *, rejected: int = 0) -> None:
        """Prefect took `batch` (`rejected` of its events refused for good): move the mark."""
        with self.transaction() as db:
            db.execute(
                "UPDATE forward_destinations SET after_seq = max(after_seq, ?), "
                "delivered = delivered + ?, rejected = rejected + ?, last_delivered = ? "
                "WHERE url = ?",
                (batch.last_seq, len(batch) - rejected, rejected, _now(), url),
            )

    def release(self, url: str) -> None:
        """Nothing to give back: one process forwards a SQLite store."""

    def failed(self, url: str, error: str) -> None:
        """Record why the last attempt failed (one line) and when; the mark stays."""
        with self.transaction() as db:
            db.execute(
                "UPDATE forward_destinations SET last_error = ?, last_error_at = ? WHERE url = ?",
                (error, _now(), url),
            )

    def history(self, where: HistoryFilter, *, limit: int, max_bytes: int) -> Iterator[OutboxBatch]:
        """Stored events matching `where` (the filter's webhook is an id), oldest first, as
        batches of Prefect's JSON: a backfill, which moves no destination's mark."""
        clauses, params = history_conditions(where, iso, int)
        sql = f"SELECT {PREFECT_COLUMNS} FROM events WHERE " + " AND ".join(["seq > ?", *clauses])
        after = 0
        while True:
            rows = self._query(sql + " ORDER BY seq LIMIT ?", [after, *params, limit])
            batch = outbox_batch(rows, max_bytes)
            if batch is None:
                return
            yield batch
            after = batch.last_seq


def _now() -> str:
    return iso(utcnow())
