"""Which forwarding failures a server logs: one line when an episode of failures starts, a
reminder at most every ten minutes while it lasts (how long, how many attempts, how many events
pending), and one line when delivery resumes.

Delivery tries again on a backoff (at most every 30 s), on every server of a shared store: one
line a try would be thousands a day during a Prefect outage. What each try met stays in the
store for `hooklab forward status`.

>>> said = []
>>> log = FailureLog(warn=said.append, inform=said.append, clock=lambda: 0.0)
>>> log.failed("http://p/api", "cannot reach Prefect"); log.failed("http://p/api", "again")
>>> len(said)
1
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["REMIND_EVERY", "FailureLog", "how_long"]

REMIND_EVERY = 600.0  # seconds between reminders while an episode lasts


@dataclass
class Episode:
    started: float
    told: float
    attempts: int = 1


def how_long(seconds: float) -> str:
    """`45 s`, `12 min`, `3 h 20 min`.

    >>> [how_long(s) for s in (45, 720, 12_000)]
    ['45 s', '12 min', '3 h 20 min']
    """
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes = int(seconds // 60)
    if minutes < 60:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60} min"


class FailureLog:
    """Tells `warn(line)` of failures and `inform(line)` of good news, per destination, once per
    episode. `pending(url)` says how many events wait there (None: unknown), for reminders."""

    def __init__(
        self,
        *,
        warn: Callable[[str], object],
        inform: Callable[[str], object],
        pending: Callable[[str], int | None] = lambda _url: None,
        clock: Callable[[], float] = time.monotonic,
        remind_every: float = REMIND_EVERY,
    ) -> None:
        self.warn = warn
        self.inform = inform
        self.pending = pending
        self.clock = clock
        self.remind_every = remind_every
        self._episodes: dict[str, Episode] = {}

    def failed(self, url: str, line: str) -> None:
        """An attempt to deliver to `url` failed with `line`."""
        now = self.clock()
        episode = self._episodes.get(url)
        if episode is None:
            self._episodes[url] = Episode(started=now, told=now)
            every = how_long(self.remind_every)
            self.warn(
                f"hooklab: forwarding to {url} failed, will retry (said again every {every} "
                f"while it fails): {line}"
            )
            return
        episode.attempts += 1
        if now - episode.told < self.remind_every:
            return
        episode.told = now
        waiting = self.pending(url)
        held = "" if waiting is None else f", {waiting} event{'' if waiting == 1 else 's'} pending"
        self.warn(
            f"hooklab: forwarding to {url} still failing after {how_long(now - episode.started)} "
            f"({episode.attempts} attempts{held}): {line}"
        )

    def resumed(self, url: str, line: str) -> None:
        """Prefect took a batch for `url` again: the episode, if any, ends in one line."""
        episode = self._episodes.pop(url, None)
        if episode is not None:
            lasted = how_long(self.clock() - episode.started)
            self.inform(f"forwarding to {url} resumed: {line}, over {lasted}")

    def store_down(self, url: str, line: str) -> None:
        """The store stopped answering (said once by the delivery, until it answers again)."""
        self.warn(f"hooklab: forwarding to {url} waits for the store: {line}")

    def store_back(self, url: str) -> None:
        """The store answers again: events are read again, which says nothing of Prefect."""
        failing = url in self._episodes
        after = (
            "Prefect is still failing, as said above"
            if failing
            else "delivery to Prefect goes on from the outbox"
        )
        self.inform(f"forwarding to {url}: the store answers again; {after}")

    def removed(self, url: str) -> None:
        """`url` is no longer a destination (`hooklab forward stop`)."""
        self._episodes.pop(url, None)
        self.inform(f"forwarding to {url} stopped: it was removed from the store")
