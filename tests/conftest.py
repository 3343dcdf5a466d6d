"""Shared fixtures: a real workspace file per test, a fixed clock, predictable ids, and a real
PostgreSQL (a throwaway cluster for the run, a fresh database per test)."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from uuid import UUID

import pytest
from pg_support import NOT_INSTALLED, PostgresCluster, Role, find_bindir

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


def _cluster(factory: pytest.TempPathFactory, durable: bool) -> Iterator[PostgresCluster]:
    bindir = find_bindir()
    if bindir is None:
        pytest.skip(NOT_INSTALLED)
    # The log outlives the cluster, in pytest's temporary folders (the last three runs are kept).
    log = factory.mktemp("postgres-durable" if durable else "postgres") / "postgres.log"
    cluster = PostgresCluster(bindir, durable=durable, log_path=log)
    try:
        yield cluster.start()
    finally:
        cluster.close()


@pytest.fixture(scope="session")
def postgres_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresCluster]:
    """A PostgreSQL for the whole run, without fsync; `stop()` and `start()` keep data and port."""
    yield from _cluster(tmp_path_factory, durable=False)


@pytest.fixture(scope="session")
def durable_postgres_cluster(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[PostgresCluster]:
    """A PostgreSQL with fsync and synchronous commit on, for tests that count what survives."""
    yield from _cluster(tmp_path_factory, durable=True)


@pytest.fixture
def postgres_url(postgres_cluster: PostgresCluster) -> Iterator[str]:
    """postgresql://hooklab@127.0.0.1:PORT/NAME of a fresh, empty database, dropped after."""
    with postgres_cluster.database() as url:
        yield url


@pytest.fixture
def durable_postgres_url(durable_postgres_cluster: PostgresCluster) -> Iterator[str]:
    """As `postgres_url`, on the durable cluster."""
    with durable_postgres_cluster.database() as url:
        yield url


@pytest.fixture
def postgres_role(
    postgres_cluster: PostgresCluster, postgres_url: str
) -> Iterator[Callable[..., Role]]:
    """Makes login roles without rights on `postgres_url`'s database: `postgres_role()`, or
    `postgres_role(password="...")`; each is dropped after the test."""
    made: list[Role] = []
    database = postgres_url.rsplit("/", 1)[1]

    def make(password: str | None = None) -> Role:
        made.append(postgres_cluster.create_role(database, password=password))
        return made[-1]

    yield make
    for role in made:
        postgres_cluster.drop_role(role.name)
