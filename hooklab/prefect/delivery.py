"""Delivery to one Prefect API, counted only once Prefect has stored the events.

Prefect's event socket answers a ping as soon as it has read the frames sent before it; the
server then holds the events in memory, and its writer stores them a moment later (every 20
events, or every 5 s). A pong is therefore proof of receipt, not of storage: a server killed in
between loses what it had just acknowledged. So a delivery keeps the batches Prefect
acknowledged as *unproven*, reads them back (`POST /events/filter` with their ids and occurred
window answers how many it has), and reports only a proven prefix as delivered. After any
failure it sends again from the last proven event, and so it does when acknowledged events are
still not stored `RESEND_AFTER` seconds later. Prefect keeps an event id once, so sending
again never makes a duplicate.

>>> delivery = Delivery(api, source, on_proven)   # doctest: +SKIP
>>> await delivery.step()                          # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from hooklab.core.times import iso, parse_iso
from hooklab.prefect.client import PrefectApi, PrefectError
from hooklab.prefect.stream import EventStream
from hooklab.store.contract import OutboxBatch

__all__ = ["Delivery", "Sent", "Unproven", "count_stored"]

SETTLE = 0.5  # seconds after its acknowledgement before a batch is first looked for
CHECK_GAP_CAP = 4.0  # seconds between looks at most, while Prefect has not yet stored them
RESEND_AFTER = 20.0  # seconds an acknowledged batch may stay unstored before it is sent again
MAX_UNPROVEN = 5_000  # events acknowledged and not yet proven, before sending waits
WINDOW_MARGIN = timedelta(seconds=1)  # around the occurred window read back

Source = Callable[[int | None], OutboxBatch | None]
"""The next batch after a seq (None: from the first event still to deliver)."""


@dataclass(frozen=True)
class Sent:
    """A batch Prefect acknowledged: enough of it to find it again, and when."""

    last_seq: int
    ids: tuple[str, ...]
    earliest: str  # occurred, as stored
    latest: str
    at: float  # monotonic time of the acknowledgement


class Unproven:
    """The batches acknowledged on the current connection and not yet proven, oldest first."""

    def __init__(self) -> None:
        self.batches: deque[Sent] = deque()
        self.events = 0

    def __len__(self) -> int:
        return len(self.batches)

    @property
    def cursor(self) -> int | None:
        """The seq of the last event sent, or None when nothing unproven was sent."""
        return self.batches[-1].last_seq if self.batches else None

    def add(self, batch: OutboxBatch, at: float) -> None:
        earliest, latest = batch.occurred
        self.batches.append(Sent(batch.last_seq, tuple(batch.ids), earliest, latest, at))
        self.events += len(batch.ids)

    def settled(self, now: float) -> list[Sent]:
        """The batches acknowledged at least `SETTLE` seconds before `now`."""
        return [sent for sent in self.batches if now - sent.at >= SETTLE]

    def take(self, count: int) -> list[Sent]:
        """Remove and return the `count` oldest batches."""
        taken = [self.batches.popleft() for _ in range(count)]
        self.events -= sum(len(sent.ids) for sent in taken)
        return taken

    def clear(self) -> None:
        self.batches.clear()
        self.events = 0


def count_stored(api: PrefectApi, batches: list[Sent]) -> tuple[int, int]:
    """(How many distinct event ids the batches hold, how many of them Prefect has stored)."""
    ids = sorted({one for sent in batches for one in sent.ids})
    since = parse_iso(min(sent.earliest for sent in batches)) - WINDOW_MARGIN
    until = parse_iso(max(sent.latest for sent in batches)) + WINDOW_MARGIN
    where = {"occurred": {"since": iso(since), "until": iso(until)}, "id": {"id": ids}}
    answer: Any = api.post("/events/filter", {"filter": where, "limit": 1})
    total = answer.get("total") if isinstance(answer, dict) else None
    if not isinstance(total, int) or isinstance(total, bool):
        raise api.not_prefect("POST", api.url + "/events/filter", "its answer has no total")
    return len(ids), total


class Delivery:
    """Sends batches from `source` to one Prefect API and calls `on_proven(batches)` for each
    prefix Prefect has stored. Where Prefect refuses to let the events be read back (a key
    without that right), `on_notice(line)` hears it once, and from then on an acknowledgement
    counts as delivery (`verify` is False)."""

    def __init__(
        self,
        api: PrefectApi,
        source: Source,
        on_proven: Callable[[list[Sent]], object],
        *,
        timeout: float = 10.0,
        on_notice: Callable[[str], object] | None = None,
    ) -> None:
        self.api = api
        self.source = source
        self.on_proven = on_proven
        self.on_notice = on_notice
        self.stream = EventStream(api, timeout=timeout)
        self.unproven = Unproven()
        self.verify = True
        self._next_check = 0.0
        self._gap = SETTLE

    @property
    def url(self) -> str:
        return self.api.url

    async def step(self) -> int:
        """Prove what is due, then send the next batch; returns how many events were sent.
        Raises `PrefectError` (one line); then `restart` sends again from the mark."""
        await self.prove()
        if self.unproven.events >= MAX_UNPROVEN:
            return 0
        batch = self.source(self.unproven.cursor)
        if batch is None:
            return 0
        await self.stream.send(batch.texts)
        self.unproven.add(batch, time.monotonic())
        if not self.verify:
            self.on_proven(self.unproven.take(len(self.unproven)))
        return len(batch)

    async def prove(self, *, now: float | None = None) -> None:
        """Read back the settled batches when a look is due; report the proven prefix.
        Raises `PrefectError` when acknowledged events stay unstored past `RESEND_AFTER`."""
        now = time.monotonic() if now is None else now
        if not self.unproven or now < self._next_check:
            return
        settled = self.unproven.settled(now)
        if not settled:
            return
        try:
            proven = await self._proven_prefix(settled)
        except PrefectError as exc:
            if exc.retry and exc.status not in (401, 403):
                raise
            self.verify = False
            self.on_proven(self.unproven.take(len(self.unproven)))
            if self.on_notice is not None:
                self.on_notice(
                    f"cannot read events back to confirm that Prefect stored them ({exc}); "
                    "counting the events it acknowledges as delivered"
                )
            return
        if proven:
            self.on_proven(self.unproven.take(proven))
            self._gap = SETTLE
        if self.unproven and now - self.unproven.batches[0].at >= RESEND_AFTER:
            missing = self.unproven.events
            raise PrefectError(
                0,
                f"Prefect at {self.url} acknowledged events but has not stored them after "
                f"{RESEND_AFTER:g} s; sending {missing} event(s) again",
            )
        if proven < len(settled):  # not yet stored: look again later, less and less often
            self._gap = min(CHECK_GAP_CAP, self._gap * 2)
        self._next_check = now + self._gap

    async def finish(self, timeout: float) -> bool:
        """Wait (up to `timeout` seconds) until everything sent is proven; True if it is."""
        deadline = time.monotonic() + timeout
        while self.unproven and time.monotonic() < deadline:
            await asyncio.sleep(min(SETTLE, max(0.0, deadline - time.monotonic())))
            self._next_check = 0.0
            await self.prove()
        return not self.unproven

    def restart(self) -> None:
        """After a failure: a new connection next time, and everything unproven sent again."""
        self.stream.close()
        self.unproven.clear()
        self._next_check, self._gap = 0.0, SETTLE

    async def aclose(self) -> None:
        await self.stream.aclose()

    async def _proven_prefix(self, batches: list[Sent]) -> int:
        """How many of `batches`, from the first, Prefect has stored whole. Usually one read;
        when some are missing, a binary search for the stored prefix."""

        async def all_stored(count: int) -> bool:
            wanted, found = await asyncio.to_thread(count_stored, self.api, batches[:count])
            return found >= wanted

        if await all_stored(len(batches)):
            return len(batches)
        low, high = 0, len(batches) - 1  # all_stored(low) holds, all_stored(high + 1) fails
        while low < high:
            middle = (low + high + 1) // 2
            if await all_stored(middle):
                low = middle
            else:
                high = middle - 1
        return low
