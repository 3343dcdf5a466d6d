"""The forwarding outbox (SPEC 11): destinations, what each still has to send, and its state.

The events table is the queue. A destination keeps a mark, `after_seq`: every event stored
with a higher seq is pending for it. The transaction that stores an event therefore enqueues
it for every destination, failed events included, and the receiver writes nothing more.
Delivery moves the mark forward only after Prefect took a batch, so a crash or an outage
sends a batch again (at least once); Prefect ignores an event id it already has.

>>> from hooklab.store.sqlite import Store
>>> outbox = Outbox(Store(":memory:"))
>>> outbox.add("http://127.0.0.1:4200/api").pending
0
"""

from __future__ import annotations

import json
import sqlite3
import threading
import urllib.parse
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from hooklab.core.times import iso, parse_iso, utcnow
from hooklab.store.connection import Connected
from hooklab.store.filters import EVERYTHING, HistoryFilter
from hooklab.store.sqlite import Store, event_filters

__all__ = ["Destination", "Outbox", "OutboxBatch", "destination_url", "prefect_event_json"]

# The columns of a stored event that make Prefect's event, in the order of `prefect_event_json`.
PREFECT_COLUMNS = "seq, id, occurred, event, resource, related, payload, follows"
DESTINATION_COLUMNS = (
    "url, after_seq, delivered, rejected, last_delivered, last_error, last_error_at, created"
)


def destination_url(url: str) -> str:
    """A Prefect API URL, checked, without a trailing slash and without any user:password in
    it: the key of a destination, which is stored.

    >>> destination_url("http://user:secret@127.0.0.1:4200/api/")
    'http://127.0.0.1:4200/api'
    """
    parts = urllib.parse.urlsplit(url.strip())
    host = parts.netloc.rpartition("@")[2]  # a user:password never becomes part of the key
    if parts.scheme not in ("http", "https") or not host:
        shown = urllib.parse.urlunsplit(parts._replace(netloc=host))
        raise ValueError(
            f"not a Prefect API URL: {shown!r} (e.g. http://127.0.0.1:4200/api, or "
            "https://api.prefect.cloud/api/accounts/<account>/workspaces/<workspace>)"
        )
    return urllib.parse.urlunsplit((parts.scheme, host, parts.path.rstrip("/"), "", ""))


@dataclass(frozen=True)
class Destination:
    """A Prefect API that this home forwards to, and how far it got."""

    url: str
    after_seq: int
    delivered: int
    rejected: int
    last_delivered: datetime | None
    last_error: str | None
    last_error_at: datetime | None
    created: datetime
    pending: int = 0
    oldest_pending: datetime | None = None  # when the oldest pending event was received

    @property
    def failing(self) -> bool:
        """The last attempt failed: an error came after the last delivery (or none came)."""
        if self.last_error_at is None:
            return False
        return self.last_delivered is None or self.last_error_at >= self.last_delivered

    def lag(self, now: datetime) -> float | None:
        """Seconds the oldest pending event has waited; None when nothing is pending."""
        if self.oldest_pending is None:
            return None
        return max(0.0, (now - self.oldest_pending).total_seconds())


@dataclass(frozen=True)
class OutboxBatch:
    """Events to send, as Prefect's JSON texts, and the seq of the last one; `occurred` is the
    earliest and latest of their times, as stored (to find them again in Prefect)."""

    texts: list[str]
    ids: list[str]
    last_seq: int
    occurred: tuple[str, str] = ("", "")

    def __len__(self) -> int:
        return len(self.ids)


class Outbox(Connected):
    """The outbox of one store. It reads and writes on a connection of its own (the same file),
    so a forwarder thread never waits for the receiver's writer, nor the writer for it."""

    def __init__(self, store: Store) -> None:
        self.path = store.path
        self.read_only = store.read_only
        if store.path == ":memory:" or store.read_only is not None:
            # another connection would see another database, or could not open a read-only one
            self._db, self._lock, self._own = store._db, store._lock, False
        else:
            self._db = sqlite3.connect(store.path, check_same_thread=False, isolation_level=None)
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

    def remove(self, url: str) -> bool:
        with self.transaction() as db:
            return db.execute("DELETE FROM forward_destinations WHERE url=?", (url,)).rowcount > 0

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

    def _with_pending(self, row: Sequence[Any]) -> Destination:
        after = int(row[1])
        pending, oldest = self._query(
            "SELECT count(*), (SELECT received FROM events WHERE seq > ? ORDER BY seq LIMIT 1) "
            "FROM events WHERE seq > ?",
            (after, after),
        )[0]
        return Destination(
            url=row[0],
            after_seq=after,
            delivered=int(row[2]),
            rejected=int(row[3]),
            last_delivered=_time(row[4]),
            last_error=row[5],
            last_error_at=_time(row[6]),
            created=parse_iso(row[7]),
            pending=int(pending),
            oldest_pending=_time(oldest),
        )

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
        return _batch(rows, max_bytes)

    def delivered(self, url: str, batch: OutboxBatch, *, rejected: int = 0) -> None:
        """Prefect took `batch` (`rejected` of its events refused for good): move the mark."""
        with self.transaction() as db:
            db.execute(
                "UPDATE forward_destinations SET after_seq = max(after_seq, ?), "
                "delivered = delivered + ?, rejected = rejected + ?, last_delivered = ? "
                "WHERE url = ?",
                (batch.last_seq, len(batch) - rejected, rejected, _now(), url),
            )

    def failed(self, url: str, error: str) -> None:
        """Record why the last attempt failed (one line) and when; the mark stays."""
        with self.transaction() as db:
            db.execute(
                "UPDATE forward_destinations SET last_error = ?, last_error_at = ? WHERE url = ?",
                (error, _now(), url),
            )


def history_batches(
    store: Store, where: HistoryFilter = EVERYTHING, *, limit: int, max_bytes: int
) -> Iterator[OutboxBatch]:
    """Stored events matching `where` (the filter's webhook is an id), oldest first, as batches
    of Prefect's JSON: a backfill, which moves no destination's mark."""
    clauses, params = event_filters(where)
    after = 0
    outbox = Outbox(store)
    try:
        while True:
            sql = f"SELECT {PREFECT_COLUMNS} FROM events WHERE " + " AND ".join(
                ["seq > ?", *clauses]
            )
            rows = outbox._query(sql + " ORDER BY seq LIMIT ?", [after, *params, limit])
            batch = _batch(rows, max_bytes)
            if batch is None:
                return
            yield batch
            after = batch.last_seq
    finally:
        outbox.close()


def prefect_event_json(
    id: str,
    occurred: str,
    event: str,
    resource: str,
    related: str,
    payload: str,
    follows: str | None,
) -> str:
    """Prefect's event JSON from a stored event's columns. `resource`, `related` and `payload`
    are stored as JSON text already, so they are joined in as they are: the event Prefect gets
    is the event hooklab stored, unchanged."""
    return (
        f'{{"id":"{id}","occurred":"{occurred}","event":{json.dumps(event)},'
        f'"resource":{resource},"related":{related},"payload":{payload},'
        f'"follows":{"null" if follows is None else json.dumps(follows)}}}'
    )


def _batch(rows: Sequence[Sequence[Any]], max_bytes: int) -> OutboxBatch | None:
    texts: list[str] = []
    ids: list[str] = []
    occurred: list[str] = []
    size, last = 0, 0
    for row in rows:
        text = prefect_event_json(*row[1:])
        if texts and size + len(text) > max_bytes:
            break
        texts.append(text)
        ids.append(str(row[1]))
        occurred.append(row[2])
        size, last = size + len(text), int(row[0])
    return OutboxBatch(texts, ids, last, (min(occurred), max(occurred))) if texts else None


def _time(text: str | None) -> datetime | None:
    return parse_iso(text) if text else None


def _now() -> str:
    return iso(utcnow())
