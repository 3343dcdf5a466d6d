"""Forwarding a home's events to Prefect: the outbox's delivery thread, backfills, replays.

>>> workspace.forward_to("http://127.0.0.1:4200/api")           # doctest: +SKIP
>>> forwarding = Forwarding(workspace.store).start()            # doctest: +SKIP

The thread reads the outbox on a connection of its own and sends on a loop of its own, so the
receiver's answers never wait for it or for Prefect. Every destination the home records is
delivered, in batches, oldest first; after a failure it waits (0.5 s, doubling, at most
`backoff_cap`) and sends the same batch again.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Coroutine, Iterable
from typing import TYPE_CHECKING, Any, TypeVar

from hooklab.core.outcome import Outcome
from hooklab.prefect.client import Credentials, PrefectApi, PrefectError, api_url
from hooklab.prefect.stream import EventStream
from hooklab.store.filters import EVERYTHING, HistoryFilter
from hooklab.store.outbox import Outbox, history_batches, prefect_event_json
from hooklab.store.sqlite import Store
from hooklab.store.values import stored_json

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = ["Forwarding", "backoff", "forward_history", "forward_outcomes"]

BATCH = 500
BATCH_BYTES = 4_000_000
T = TypeVar("T")


def backoff(failures: int, *, first: float = 0.5, cap: float = 30.0) -> float:
    """Seconds to wait after `failures` failures in a row: doubling from `first`, capped.

    >>> [backoff(n, cap=4) for n in range(1, 6)]
    [0.5, 1.0, 2.0, 4, 4]
    """
    return min(cap, first * 2.0 ** (failures - 1))


class Forwarding:
    """Delivers the outbox of `store` to each destination it records, from a daemon thread.

    `credentials` maps a destination URL to its credentials; any other destination uses
    Prefect's environment variables. `on_error(url, line)` hears of each failure (from the
    thread)."""

    def __init__(
        self,
        store: Store,
        *,
        credentials: dict[str, Credentials] | None = None,
        batch: int = BATCH,
        poll: float = 0.2,
        backoff_cap: float = 30.0,
        on_error: Callable[[str, str], None] | None = None,
    ) -> None:
        self.outbox = Outbox(store)
        self.credentials = dict(credentials or {})
        self.batch = batch
        self.poll = poll
        self.backoff_cap = backoff_cap
        self.on_error = on_error
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:
        return f"Forwarding({self.outbox.path!r}, running={self.running})"

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def add(self, url: str, credentials: Credentials | None = None) -> None:
        """Use these credentials for `url` (the outbox records the URL, never them)."""
        if credentials is not None:
            self.credentials[api_url(url)] = credentials

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

    def stop(self, timeout: float = 10.0) -> None:
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
        streams: dict[str, EventStream] = {}
        failures: dict[str, int] = {}
        retry_at: dict[str, float] = {}
        try:
            while not self._stop.is_set():
                sent = False
                for url in self.outbox.urls():
                    if self._stop.is_set() or time.monotonic() < retry_at.get(url, 0.0):
                        continue
                    batch = self.outbox.next_batch(url, limit=self.batch, max_bytes=BATCH_BYTES)
                    if batch is None:
                        continue
                    stream = streams.get(url)
                    if stream is None:
                        credentials = self.credentials.get(url) or Credentials.resolve()
                        stream = streams[url] = EventStream(PrefectApi(url, credentials))
                    try:
                        await stream.send(batch.texts)
                    except PrefectError as exc:
                        failures[url] = failures.get(url, 0) + 1
                        retry_at[url] = time.monotonic() + backoff(
                            failures[url], cap=self.backoff_cap
                        )
                        self.outbox.failed(url, str(exc))
                        if self.on_error is not None:
                            self.on_error(url, str(exc))
                        continue
                    failures.pop(url, None)
                    self.outbox.delivered(url, batch)
                    # A full batch: more may be waiting. Otherwise wait a poll, so that under
                    # steady traffic events go in batches, not one read, send and ping each.
                    sent = sent or len(batch) >= self.batch
                if not sent:
                    await self._pause(self.poll)
        finally:
            for stream in streams.values():
                await stream.aclose()

    async def _pause(self, seconds: float) -> None:
        """Sleep, but wake within a tenth of a second of a stop."""
        deadline = time.monotonic() + seconds
        while not self._stop.is_set() and time.monotonic() < deadline:
            await asyncio.sleep(min(0.1, deadline - time.monotonic()))


def forward_history(
    store: Store,
    url: str,
    where: HistoryFilter = EVERYTHING,
    *,
    credentials: Credentials | None = None,
    batch: int = BATCH,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Send the stored events matching `where` to `url` once (a backfill) and return how many.
    No destination is added and no outbox mark moves. Raises `PrefectError` on failure."""
    api = PrefectApi(url, credentials)

    async def send() -> int:
        stream = EventStream(api)
        sent = 0
        try:
            for chunk in history_batches(store, where, limit=batch, max_bytes=BATCH_BYTES):
                await stream.send(chunk.texts)
                sent += len(chunk)
                if progress is not None:
                    progress(sent)
        finally:
            await stream.aclose()
        return sent

    return run_blocking(send())


def forward_outcomes(
    outcomes: Iterable[Outcome], url: str, *, credentials: Credentials | None = None
) -> int:
    """Send the events of these outcomes (a replay's, say) to `url`; returns how many."""
    texts = [
        prefect_event_json(
            str(e.id),
            e.occurred.isoformat(),
            e.event,
            e.resource.model_dump_json(),
            "[" + ",".join(r.model_dump_json() for r in e.related) + "]",
            stored_json(e.payload),
            str(e.follows) if e.follows else None,
        )
        for outcome in outcomes
        for e in outcome.events
    ]
    api = PrefectApi(url, credentials)

    async def send() -> int:
        stream = EventStream(api)
        try:
            for start in range(0, len(texts), BATCH):
                await stream.send(texts[start : start + BATCH])
        finally:
            await stream.aclose()
        return len(texts)

    return run_blocking(send())


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
