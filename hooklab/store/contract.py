"""The store contract: every verb the layers above use, and the records they exchange.

Two backends keep it: SQLite (`hooklab.store.sqlite`, one file, the default) and PostgreSQL
(`hooklab.store.postgres`, several processes on one database). Nothing above `hooklab.store`
names a backend: it opens a store with `hooklab.store.open_store(url)` and speaks this.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from hooklab.core.errors import StoreError, StoreUnavailable
from hooklab.core.outcome import Outcome
from hooklab.core.request import HookRequest
from hooklab.core.times import iso
from hooklab.core.webhooks import Webhook
from hooklab.store.filters import HistoryFilter

EVENT_COLUMNS = (
    "id", "occurred", "received", "event", "resource", "related", "payload",
    "follows", "webhook_id", "request_id", "failed", "error",
)  # fmt: skip
"""The columns of a stored event, in the order the row readers give them."""

__all__ = [
    "EVENT_COLUMNS",
    "Destination",
    "Directory",
    "Feed",
    "FeedRow",
    "HistorySource",
    "Outbox",
    "OutboxBatch",
    "ServiceAccount",
    "Store",
    "StoreError",
    "StoreUnavailable",
    "StoredRequest",
    "Writer",
]


@dataclass(frozen=True)
class ServiceAccount:
    id: str
    name: str
    created: datetime

    def to_api(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "created": iso(self.created)}


@dataclass(frozen=True)
class HistorySource:
    """Where the history's Arrow reader (`hooklab.store.readout`) reads a store: its file or
    URL (`location`); for a SQLite database in memory, which no other connection sees, the
    store's own connection and the lock its users take turns with (`shared`); and why a file
    cannot be written (`read_only`: it is then read in this process). A URL may hold a
    password: it is not shown."""

    location: str | None = field(repr=False)
    shared: tuple[Any, Any] | None = field(default=None, repr=False)
    read_only: str | None = None
    # A SQLite store's own connection, closed while a block runs when nothing else uses it
    # (the block is told whether it was): see `SqliteStore.lent`.
    lend: Callable[[], AbstractContextManager[bool]] | None = field(default=None, repr=False)


@dataclass(frozen=True)
class FeedRow:
    """One event as a live feed shows it."""

    received: datetime
    event: str
    resource_id: str
    error: str | None


@dataclass(frozen=True)
class Feed:
    """What was stored since a feed last looked: its new position, how many events and
    failures came, and the newest few of them (oldest first)."""

    position: int
    count: int
    failed: int
    rows: list[FeedRow]


@dataclass(frozen=True)
class StoredRequest:
    """A stored request with the status and error it got."""

    request: HookRequest
    webhook_id: str | None
    status: int
    error: str | None
    rendered: str | None


@dataclass(frozen=True)
class Directory:
    """What the receiver needs of the store for each request, held in memory: every webhook by
    its slug, and each service account's key hash by its id. A store keeps it current: after
    its own changes at once, after other processes' within a second."""

    webhooks: dict[str, Webhook]
    key_hashes: dict[str, str]


@dataclass(frozen=True)
class Destination:
    """A Prefect API that this store forwards to, and how far it got."""

    url: str
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
    """Events to send, as Prefect's JSON texts, their ids, and the seq of the last one;
    `occurred` is the earliest and latest of their times, as ISO text (to find them again in
    Prefect)."""

    texts: list[str]
    ids: list[str]
    last_seq: int
    occurred: tuple[str, str] = ("", "")

    def __len__(self) -> int:
        return len(self.ids)


class Outbox(Protocol):
    """The forwarding queue of a store, on a connection of its own: destinations, what each
    still has to send, and its state. Delivery is at least once: an event is handed out until
    `delivered` says Prefect stored it. `next_batch(after=seq)` continues after events sent
    but not yet proven; `after=None` starts again from the first one not delivered. Where
    several processes forward (PostgreSQL), each event handed out is claimed by one of them
    for a lease; `release` gives back this process's claims."""

    location: str

    def close(self) -> None: ...
    def add(self, url: str, *, now: datetime | None = None) -> Destination: ...
    def remove(self, url: str) -> int | None:
        """Stop forwarding to `url`: delete it and what it still had to send; how many pending
        events were dropped, or None when it was not a destination."""
        ...

    def get(self, url: str) -> Destination | None: ...
    def destinations(self) -> list[Destination]: ...
    def urls(self) -> list[str]: ...
    def has_pending(self, url: str) -> bool: ...
    def next_batch(
        self, url: str, *, limit: int, max_bytes: int, after: int | None = None
    ) -> OutboxBatch | None: ...
    def delivered(self, url: str, batch: OutboxBatch, *, rejected: int = 0) -> None: ...
    def release(self, url: str) -> None: ...
    def failed(self, url: str, error: str) -> None: ...
    def history(
        self, where: HistoryFilter, *, limit: int, max_bytes: int
    ) -> Iterator[OutboxBatch]: ...


class Writer(Protocol):
    """How a server writes what it receives: batches of outcomes, one transaction each.

    `write` either stores the batch before it returns (SQLite: a local file, microseconds, so
    it runs on the event loop) and returns None, or returns an awaitable that stores it
    (PostgreSQL: a round trip, during which the next batch gathers). Either raises
    `StoreUnavailable` when the store does not answer: every request of the batch is then
    refused alike, and the sender tries again later. Any other error is for this batch only.
    """

    parallel: int
    """How many awaitable writes may be in flight at once, each its own transaction."""

    def write(self, outcomes: Sequence[Outcome]) -> Awaitable[None] | None: ...
    def written(self, count: int) -> None:
        """`count` requests were stored: upkeep that follows writing (a checkpoint)."""
        ...

    def tick(self) -> None:
        """Called every few seconds while serving: upkeep that follows time."""
        ...

    async def ping(self) -> None:
        """Return when the store answers; raise `StoreUnavailable` when it does not."""
        ...

    def close(self) -> None: ...


class Store(Protocol):
    """A hooklab store: webhooks, service accounts, settings, the history and the outbox."""

    url: str
    """How the store was named: a file path, `:memory:`, or a PostgreSQL URL (which may hold
    a password: never show it; show `location`)."""

    location: str
    """Where the store is, for a person: the file, or `postgresql://user@host:port/db`."""

    shared: bool
    """Whether several processes may serve this store at once (PostgreSQL)."""

    read_only: str | None
    """Why the store cannot be written (a read-only SQLite home), or None: reads still work."""

    def close(self) -> None: ...
    def migrations(self) -> list[str]: ...
    def directory(self, *, fresh: bool = True) -> Directory:
        """The webhooks and key hashes as the receiver needs them. `fresh=False` may skip
        looking for other processes' changes (the receiver looks once per loop turn)."""
        ...

    # Webhooks
    def insert_webhook(self, hook: Webhook) -> None: ...
    def save_webhook(self, hook: Webhook) -> None: ...
    def delete_webhook(self, webhook_id: str) -> bool: ...
    def webhook_by(self, column: str, value: str) -> Webhook | None: ...
    def webhooks_named(self, name: str) -> list[Webhook]: ...
    def webhooks(self) -> list[Webhook]: ...

    # Service accounts and settings
    def insert_service_account(self, account: ServiceAccount, key_hash: str) -> None: ...
    def service_accounts(self) -> list[ServiceAccount]: ...
    def service_account_key_hash(self, account_id: str) -> str | None: ...
    def delete_service_account(self, account_id: str) -> list[str]: ...
    def setting(self, key: str, default: str | None = None) -> str | None: ...
    def set_setting(self, key: str, value: str) -> None: ...
    def count_up(self, key: str) -> int: ...
    def disable_webhooks_without_account(self, now: datetime) -> int: ...

    # Requests and events
    def record(self, outcomes: Iterable[Outcome]) -> int: ...
    def writer(self) -> Writer: ...
    def feed_after(self, position: int, *, webhook_id: str | None = None, limit: int = 20) -> Feed:
        """What was stored after `position` (0: the start) by any process, for a live feed."""
        ...

    def event_rows(
        self, where: HistoryFilter, *, limit: int | None = None
    ) -> tuple[list[str], list[tuple[Any, ...]]]: ...
    def iter_event_rows(
        self, where: HistoryFilter, *, batch: int = 10_000
    ) -> tuple[list[str], Iterator[tuple[Any, ...]]]: ...
    def request_records(
        self,
        where: HistoryFilter,
        *,
        ids: Sequence[str] | None = None,
        limit: int | None = None,
    ) -> list[StoredRequest]: ...
    def request_batches(
        self, where: HistoryFilter, *, limit: int | None = None, batch: int = 2_000
    ) -> tuple[int, Iterator[list[StoredRequest]]]:
        """How many requests `request_records` would give (the `limit` most recent, when
        given), and those requests in batches, oldest first, each read when it is reached."""
        ...

    def has_request(self, request_id: str) -> bool: ...
    def has_history(self, webhook_id: str) -> bool: ...
    def count(self, table: str) -> int: ...
    def history_source(self) -> HistorySource:
        """Where the history's Arrow reader reads this store."""
        ...

    # Forwarding
    def outbox(self) -> Outbox:
        """The forwarding queue, on a connection of its own (for a thread or a process)."""
        ...

    # Copying between stores: rows as plain values, in their order of storage
    def dump(
        self, table: str, *, after: int, limit: int, max_bytes: int | None = None
    ) -> tuple[int, list[dict[str, Any]]]:
        """Up to `limit` rows of `table` past position `after` (0: the start), as plain
        values, and the position after them. With `max_bytes`, requests and events stop
        before their large columns pass that many bytes (one row at least)."""
        ...

    def load(self, table: str, rows: Sequence[dict[str, Any]]) -> int:
        """Insert rows `dump` gave (from either backend), skipping those already here (by
        id); returns how many were new."""
        ...

    def prepare_load(self) -> None:
        """Before loading: make what skipping copied events needs (an index)."""
        ...

    def finish_load(self) -> None:
        """After loading: drop it again."""
        ...
