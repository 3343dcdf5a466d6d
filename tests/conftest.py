"""Shared fixtures: a real workspace file per test, a fixed clock, predictable ids."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from uuid import UUID

import pytest

import hooklab

START = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)


@pytest.fixture
def start() -> datetime:
    """Where the `clock` fixture starts."""
    return START


@pytest.fixture
def clock() -> Callable[[], datetime]:
    """A clock that moves one second each time it is read, from START."""
    ticks = itertools.count()
    return lambda: START + timedelta(seconds=next(ticks))


@pytest.fixture
def new_id() -> Callable[[], UUID]:
    """Ids 00000000-...-000000000001, ...-000000000002, ... in order."""
    counter = itertools.count(1)
    return lambda: UUID(int=next(counter))


@pytest.fixture
def ws(
    tmp_path: Path, clock: Callable[[], datetime], new_id: Callable[[], UUID]
) -> Iterator[hooklab.Workspace]:
    """A workspace file on the seeded clock and ids, so frames and replays compare exactly."""
    seeded = hooklab.Workspace(tmp_path / "w.db", clock=clock, new_id=new_id)
    yield seeded
    seeded.close()


@pytest.fixture
def workspace(tmp_path: Path) -> Iterator[hooklab.Workspace]:
    ws = hooklab.Workspace(tmp_path / "hooklab.db")
    yield ws
    ws.close()
