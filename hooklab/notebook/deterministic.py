"""Deterministic mode: seeded ids and a fixed clock, so notebook outputs stay stable for nbval."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone
from uuid import UUID

from hooklab.core.outcome import IdSource
from hooklab.core.times import Clock

DEFAULT_START = datetime(2024, 1, 1, tzinfo=timezone.utc)


class FixedClock:
    """A clock that reads `start`, then moves on by `step` at each reading (by default it stays).

    >>> clock = FixedClock(step=timedelta(seconds=1))
    >>> clock().isoformat(), clock().isoformat()
    ('2024-01-01T00:00:00+00:00', '2024-01-01T00:00:01+00:00')
    """

    def __init__(self, start: datetime = DEFAULT_START, step: timedelta = timedelta(0)) -> None:
        if start.tzinfo is None:
            start = start.replace(tzinfo=timezone.utc)
        self.now = start
        self.step = step

    def __call__(self) -> datetime:
        moment = self.now
        self.now = moment + self.step
        return moment

    def __repr__(self) -> str:
        return f"FixedClock({self.now.isoformat()}, step={self.step})"


class SeededIds:
    """Version-4-shaped UUIDs drawn from a seeded generator: the same seed, the same ids.

    >>> SeededIds(0)() == SeededIds(0)()
    True
    """

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed
        self._random = random.Random(seed)

    def __call__(self) -> UUID:
        return UUID(int=self._random.getrandbits(128), version=4)

    def __repr__(self) -> str:
        return f"SeededIds(seed={self.seed})"


def deterministic(
    seed: int = 0, start: datetime = DEFAULT_START, step: timedelta = timedelta(0)
) -> tuple[Clock, IdSource]:
    """A clock and an id source that give the same values on every run.

    >>> clock, new_id = deterministic(seed=1)
    >>> ws = Workspace(":memory:", clock=clock, new_id=new_id)  # doctest: +SKIP
    """
    return FixedClock(start, step), SeededIds(seed)
