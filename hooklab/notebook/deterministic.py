"""Deterministic mode: seeded ids and a made-up clock, so notebook outputs stay stable for nbval.

The clock starts at 2024-01-01 00:00:00 UTC and moves on one second each time it is read, so
that what happened later still sorts later (a feed's "newest first" shows), while every run
reads the same times.

Each deterministic session on one file draws from a stream of its own: the first session on a
fresh file gets the same ids and times on every run (what nbval compares), and a later session
on the same file never repeats an id an earlier one stored.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone
from pathlib import Path
from uuid import UUID

from hooklab.core.outcome import IdSource
from hooklab.core.times import Clock
from hooklab.workspace import Workspace

DEFAULT_START = datetime(2024, 1, 1, tzinfo=timezone.utc)
SESSIONS_SETTING = "deterministic_sessions"
TICK = timedelta(seconds=1)  # the notebook clock's step at each reading
NOTICE = (
    "hooklab: deterministic mode: seeded ids, and a clock that starts at "
    f"{DEFAULT_START:%Y-%m-%d %H:%M:%S} UTC and moves a second at each reading, so that saved "
    "outputs stay the same; leave it off for real traffic"
)


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
    """Version-4-shaped UUIDs drawn from a seeded generator: the same seed and session, the
    same ids; another session, other ids.

    >>> SeededIds(0)() == SeededIds(0)(), SeededIds(0)() == SeededIds(0, session=1)()
    (True, False)
    """

    def __init__(self, seed: int = 0, *, session: int = 0) -> None:
        self.seed = seed
        self.session = session
        self._random = random.Random(seed if session == 0 else f"{seed}/{session}")

    def __call__(self) -> UUID:
        return UUID(int=self._random.getrandbits(128), version=4)

    def __repr__(self) -> str:
        return f"SeededIds(seed={self.seed}, session={self.session})"


def deterministic(
    seed: int = 0,
    start: datetime = DEFAULT_START,
    step: timedelta = timedelta(0),
    *,
    session: int = 0,
) -> tuple[Clock, IdSource]:
    """A clock and an id source that give the same values on every run. Session `n` draws
    other ids, and its clock starts `n` days after `start`, so that later sessions sort after
    earlier ones.

    >>> clock, new_id = deterministic(seed=1)
    >>> ws = Workspace(":memory:", clock=clock, new_id=new_id)  # doctest: +SKIP
    """
    return FixedClock(start + timedelta(days=session), step), SeededIds(seed, session=session)


def deterministic_workspace(
    path: str | Path, seed: int = 0, *, home: str | Path | None = None
) -> Workspace:
    """A Workspace on `path` in deterministic mode, in the next session of that store: the
    first on a fresh one gives the same ids and times on every run; a later one never
    collides with what an earlier one stored. Its clock ticks a second at each reading."""
    workspace = Workspace(path, home=home)
    session = workspace.count_up(SESSIONS_SETTING)
    workspace.clock, workspace.new_id = deterministic(seed, step=TICK, session=session)
    return workspace
