"""Forwarding a home's events to Prefect: the outbox's delivery thread, backfills, replays.

>>> workspace.forward_to("http://127.0.0.1:4200/api")           # doctest: +SKIP
>>> forwarding = Forwarding(workspace).start()                  # doctest: +SKIP

The thread reads the outbox on a connection of its own and sends on a loop of its own, so the
receiver's answers never wait for it or for Prefect. Every destination the home records is
delivered, in batches, oldest first; its mark moves once Prefect has stored a batch, not when
it acknowledged it (`hooklab.prefect.delivery`). After a failure it waits (0.5 s, doubling, at
most `backoff_cap`) and sends again all that is not yet proven stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable, Coroutine, Iterable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

from hooklab.core.errors import StoreError
from hooklab.core.outcome import Outcome
from hooklab.core.times import iso
from hooklab.prefect.client import (
    Credentials,
    PrefectApi,
    PrefectError,
    api_url,
    split_credentials,
)
from hooklab.prefect.delivery import MAX_UNPROVEN, Delivery, Sent
from hooklab.store.batches import prefect_event_json
from hooklab.store.contract import OutboxBatch
from hooklab.store.filters import EVERYTHING, HistoryFilter
from hooklab.store.values import stored_json
from hooklab.workspace import Workspace

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = ["Forwarding", "backoff", "forward_history", "forward_outcomes"]

BATCH = 500
BATCH_BYTES = 4_000_000
STORE_RETRY = 1.0  # seconds between looks at a store that does not answer
STORE_DOWN = "the store does not answer"  # how `on_error` hears of the store, not Prefect
STORE_BACK = "the store answers again"  # how `on_resumed` hears it came back
T = TypeVar("T")


def backoff(failures: int, *, first: float = 0.5, cap: float = 30.0) -> float:
    """Seconds to wait after `failures` failures in a row: doubling from `first`, capped.

    >>> [backoff(n, cap=4) for n in range(1, 6)]
    [0.5, 1.0, 2.0, 4, 4]
    """
    return min(cap, first * 2.0 ** (failures - 1))


class Forwarding:
    """Delivers the outbox of `workspace` to each destination it records, from a daemon
    thread. Where several processes forward one PostgreSQL store, each event goes out from
    one of them: each claims what it sends.

    `credentials` maps a destination URL to its credentials; any other destination uses
    Prefect's environment variables. `on_error(url, line)` hears of each failure, and
    `on_resumed(url, line)` of the first success after failures (both from the thread; the
    store's own outage is told with lines that begin `STORE_DOWN` and `STORE_BACK`), and
    `on_removed(url)` of a destination removed from the store, no longer sent to.
    An event counts as delivered once Prefect has stored it (`hooklab.prefect.delivery`); a
    stop waits up to `finish_timeout` seconds for that proof of what was sent."""

    def __init__(
        self,
        workspace: Workspace,
        *,
        credentials: dict[str, Credentials] | None = None,
        batch: int = BATCH,
        poll: float = 0.2,
        backoff_cap: float = 30.0,
        timeout: float = 10.0,
        finish_timeout: float = 8.0,
        on_error: Callable[[str, str], None] | None = None,
        on_resumed: Callable[[str, str], None] | None = None,
        on_removed: Callable[[str], None] | None = None,
    ) -> None:
        self.outbox = workspace.outbox()
        self.credentials = dict(credentials or {})
        self.batch = batch
        self.poll = poll
        self.backoff_cap = backoff_cap
        self.timeout = timeout
        self.finish_timeout = finish_timeout
        self.on_error = on_error
        self.on_resumed = on_resumed
        self.on_removed = on_removed
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._store_down = False

    def __repr__(self) -> str:
        return f"Forwarding({self.outbox.location!r}, running={self.running})"

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def add(self, url: str, credentials: Credentials | None = None) -> None:
        """Use these credentials (or those in the URL) for `url` (the outbox records the URL,
        never them)."""
        url, in_url = split_credentials(url)
        chosen = in_url or credentials
        if chosen is not None:
            self.credentials[api_url(url)] = chosen

    def start(self) -> Self:
        if not self.running:
            self._stop.clear()
            self._thread = threading.Thread(
                target=asyncio.run, args=(self._run(),), name="hooklab-forwarding", daemon=True
            )
            self._thread.start()
        return self

    def run(self) -> None:
        """Deliver in this thread until `stop_soon` (the body of `hooklab.prefect.process`).
        A stop asked for before this starts is kept: a SIGTERM that arrives while the child
        process is still starting up ends it as soon as it is up."""
        asyncio.run(self._run())

    def stop_soon(self) -> None:
        """Ask the delivery to stop after the batch in flight, from any thread or a signal
        handler, without waiting."""
        self._stop.set()

    def stop(self, timeout: float = 20.0) -> None:
        """Stop after the batch in flight; what is pending stays in the outbox."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def close(self) -> None:
        self.stop()
        self.outbox.close()

    def wait_until_delivered(self, timeout: float = 60.0) -> bool:
        """Block until no destination has anything pending (True), or `timeout` passes."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not any(self.outbox.has_pending(url) for url in self.outbox.urls()):
                return True
            time.sleep(0.05)
        return False

    async def _run(self) -> None:
        deliveries: dict[str, Delivery] = {}
        failures: dict[str, int] = {}
        retry_at: dict[str, float] = {}
        try:
            while not self._stop.is_set():
                try:
                    sent = await self._round(deliveries, failures, retry_at)
                except StoreError as exc:  # the store stopped answering: wait for it
                    for delivery in deliveries.values():
                        delivery.restart()
                    if not self._store_down:
                        self._store_down = True
                        self._tell_each(deliveries, f"{STORE_DOWN}: {exc}")
                    await self._pause(STORE_RETRY)
                    continue
                if self._store_down:
                    self._store_down = False
                    self._tell_each(deliveries, STORE_BACK, resumed=True)
                if not sent:
                    await self._pause(self.poll)
        finally:
            # Prefect writes what it took within seconds: wait that long for the proof, so a
            # clean stop leaves nothing counted pending that Prefect has.
            for url, delivery in deliveries.items():
                if url not in retry_at or time.monotonic() >= retry_at[url]:
                    with contextlib.suppress(PrefectError, StoreError):
                        await delivery.finish(self.finish_timeout)
                await delivery.aclose()

    async def _round(
        self,
        deliveries: dict[str, Delivery],
        failures: dict[str, int],
        retry_at: dict[str, float],
    ) -> bool:
        """One turn over every destination; whether a full batch went out (more may wait)."""
        sent = False
        urls = self.outbox.urls()
        for gone in set(deliveries) - set(urls):  # removed meanwhile (`forward stop`)
            await deliveries.pop(gone).aclose()
            failures.pop(gone, None)
            retry_at.pop(gone, None)
            if self.on_removed is not None:
                self.on_removed(gone)
        for url in urls:
            if self._stop.is_set() or time.monotonic() < retry_at.get(url, 0.0):
                continue
            delivery = deliveries.get(url)
            if delivery is None:
                delivery = deliveries[url] = self._delivery(url)
            try:
                count = await delivery.step()
            except PrefectError as exc:
                delivery.restart()  # after a failure, send again what is unproven
                self.outbox.release(url)  # another process may deliver meanwhile
                failures[url] = failures.get(url, 0) + 1
                retry_at[url] = time.monotonic() + backoff(failures[url], cap=self.backoff_cap)
                self._report(url, str(exc))
                continue
            if count and url in failures:
                self._resumed(url, failures.pop(url))
            # A full batch: more may be waiting. Otherwise wait a poll, so that under steady
            # traffic events go in batches, not one read, send and ping each.
            sent = sent or count >= self.batch
        return sent

    def _tell_each(
        self, deliveries: dict[str, Delivery], line: str, *, resumed: bool = False
    ) -> None:
        """Tell of the store under each destination it holds back (`on_error(url, line)` names
        where events go, never the store); the store's location before any is known."""
        hear = self.on_resumed if resumed else self.on_error
        if hear is not None:
            for url in list(deliveries) or [self.outbox.location]:
                hear(url, line)

    def _delivery(self, url: str) -> Delivery:
        credentials = self.credentials.get(url) or Credentials.resolve()

        def source(after: int | None) -> OutboxBatch | None:
            batch: OutboxBatch | None = self.outbox.next_batch(
                url, limit=self.batch, max_bytes=BATCH_BYTES, after=after
            )
            return batch

        def proven(batches: list[Sent]) -> None:
            self.outbox.delivered(url, proven_batch(batches))

        return Delivery(
            PrefectApi(url, credentials),
            source,
            proven,
            timeout=self.timeout,
            on_notice=lambda line: self._report(url, line),
        )

    def _report(self, url: str, line: str) -> None:
        self.outbox.failed(url, line)
        if self.on_error is not None:
            self.on_error(url, line)

    def _resumed(self, url: str, failures: int) -> None:
        if self.on_resumed is not None:
            attempts = f"{failures} failed attempt{'' if failures == 1 else 's'}"
            self.on_resumed(url, f"Prefect takes events again, after {attempts}")

    async def _pause(self, seconds: float) -> None:
        """Sleep, but wake within a tenth of a second of a stop."""
        deadline = time.monotonic() + seconds
        while not self._stop.is_set() and time.monotonic() < deadline:
            await asyncio.sleep(min(0.1, deadline - time.monotonic()))


def forward_history(
    workspace: Workspace,
    url: str,
    where: HistoryFilter = EVERYTHING,
    *,
    credentials: Credentials | None = None,
    batch: int = BATCH,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Send the stored events matching `where` to `url` once (a backfill) and return how many,
    once Prefect has stored them all. No destination is added and no outbox mark moves.
    Raises `PrefectError` on failure."""
    outbox = workspace.outbox()
    try:
        chunks = outbox.history(where, limit=batch, max_bytes=BATCH_BYTES)
        return run_blocking(send_all(PrefectApi(url, credentials), chunks, progress))
    finally:
        outbox.close()


def forward_outcomes(
    outcomes: Iterable[Outcome], url: str, *, credentials: Credentials | None = None
) -> int:
    """Send the events of these outcomes (a replay's, say) to `url`; returns how many, once
    Prefect has stored them all."""
    events = [e for outcome in outcomes for e in outcome.events]
    chunks = []
    for start in range(0, len(events), BATCH):
        part = events[start : start + BATCH]
        texts = [
            prefect_event_json(
                str(e.id),
                iso(e.occurred),
                e.event,
                e.resource.model_dump_json(),
                "[" + ",".join(r.model_dump_json() for r in e.related) + "]",
                stored_json(e.payload),
                str(e.follows) if e.follows else None,
            )
            for e in part
        ]
        times = [iso(e.occurred) for e in part]
        ids = [str(e.id) for e in part]
        chunks.append(OutboxBatch(texts, ids, start + len(part), (min(times), max(times))))
    return run_blocking(send_all(PrefectApi(url, credentials), iter(chunks), None))


async def send_all(
    api: PrefectApi,
    chunks: Iterator[OutboxBatch],
    progress: Callable[[int], None] | None,
    *,
    finish_timeout: float = 30.0,
) -> int:
    """Send every batch of `chunks` once, then wait until Prefect has stored them all; how
    many events that was. Raises `PrefectError` on the first failure, or when Prefect has not
    stored what it acknowledged within `finish_timeout` seconds (sending again is safe)."""
    stored = 0

    def proven(batches: list[Sent]) -> None:
        nonlocal stored
        stored += sum(len(sent.ids) for sent in batches)
        if progress is not None:
            progress(stored)

    delivery = Delivery(api, lambda _after: next(chunks, None), proven)
    try:
        while await delivery.step() or delivery.unproven.events >= MAX_UNPROVEN:
            pass
        if not await delivery.finish(finish_timeout):
            raise PrefectError(
                0,
                f"Prefect at {api.url} acknowledged {delivery.unproven.events} event(s) but "
                f"has not stored them after {finish_timeout:g} s; sending them again is safe",
            )
    finally:
        await delivery.aclose()
    return stored


def run_blocking(work: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to its end from plain code, on a thread of its own when this thread
    already runs a loop (a notebook cell)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(work)
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = asyncio.run(work)
        except BaseException as exc:
            box["error"] = exc

    thread = threading.Thread(target=target, name="hooklab-prefect")
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box["value"]  # type: ignore[no-any-return]


def proven_batch(batches: list[Sent]) -> OutboxBatch:
    """The batches Prefect stored, as one for the outbox's mark: their ids and last seq."""
    ids = [one for sent in batches for one in sent.ids]
    return OutboxBatch([], ids, batches[-1].last_seq)
