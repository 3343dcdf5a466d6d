"""Group commit and background checkpoints, on a real SQLite file."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from hooklab.core.examples import DYNAMIC_TEMPLATE as SEED_TEMPLATE
from hooklab.core.outcome import Outcome
from hooklab.core.request import HookRequest
from hooklab.store.groupcommit import GroupCommit
from hooklab.store.sqlite import SqliteStore
from hooklab.store.sqlite_writer import BackgroundCheckpoint
from hooklab.workspace import Workspace


def counted(ws: Workspace) -> tuple[list[int], Callable[[Sequence[Outcome]], None]]:
    """A write into `ws` that notes the size of each batch it is given."""
    writes: list[int] = []

    def write(outcomes: Sequence[Outcome]) -> None:
        writes.append(len(outcomes))
        ws.record(outcomes)

    return writes, write


def test_requests_ready_in_one_loop_turn_share_one_transaction(tmp_path: Path) -> None:
    ws = Workspace(tmp_path / "hooklab.db")
    hook = ws.create_webhook("models", SEED_TEMPLATE)
    writes, write = counted(ws)

    commits = GroupCommit(write)

    async def scenario() -> list[int]:
        outcomes = [
            ws.process(hook.slug, HookRequest.fake("POST", form={"model": str(i)}))
            for i in range(5)
        ]
        done = [commits.commit(outcome) for outcome in outcomes]
        assert ws.store.count("requests") == 0  # nothing is acknowledged before the write
        await asyncio.gather(*done)
        return [ws.store.count("requests")]

    assert asyncio.run(scenario()) == [5]
    assert writes == [5]
    ws.close()


def test_requests_ready_a_turn_apart_share_one_transaction(tmp_path: Path) -> None:
    """Tornado reads a request over several turns of the loop: requests sent together become
    ready a turn apart, and one transaction takes them all."""
    ws = Workspace(tmp_path / "hooklab.db")
    hook = ws.create_webhook("models", SEED_TEMPLATE)
    writes, write = counted(ws)

    async def scenario(commits: GroupCommit) -> None:
        done = []
        for turn in range(3):
            done += [
                commits.commit(ws.process(hook.slug, HookRequest.fake("POST", form={"t": str(t)})))
                for t in range(turn + 1)
            ]
            await asyncio.sleep(0)
        await asyncio.gather(*done)

    asyncio.run(scenario(GroupCommit(write)))
    assert writes == [3, 3]  # the first two turns together, then the third
    writes.clear()
    asyncio.run(scenario(GroupCommit(write, turns=1)))
    assert writes == [1, 2, 3]
    assert ws.store.count("requests") == 12
    ws.close()


def test_a_failed_write_fails_every_request_of_its_batch(tmp_path: Path) -> None:
    def write(outcomes: Sequence[Outcome]) -> None:
        raise OSError("disk full")

    commits = GroupCommit(write)

    async def scenario() -> list[str]:
        done = [commits.commit(Outcome(204)) for _ in range(3)]
        results = await asyncio.gather(*done, return_exceptions=True)
        return [str(result) for result in results]

    assert asyncio.run(scenario()) == ["disk full"] * 3


def test_a_request_the_store_refuses_fails_alone_and_its_batch_is_stored(tmp_path: Path) -> None:
    ws = Workspace(tmp_path / "hooklab.db")
    hook = ws.create_webhook("models", SEED_TEMPLATE)
    first = ws.process(hook.slug, HookRequest.fake("POST", form={"model": "a"}))
    ws.record([first])
    stored = first.request
    assert stored is not None
    commits = GroupCommit(ws.record)

    async def scenario() -> list[str | None]:
        outcomes = [
            ws.process(hook.slug, HookRequest.fake("POST", form={"model": "b"})),
            ws.process(hook.slug, stored),  # the same request id: the store refuses it
            ws.process(hook.slug, HookRequest.fake("POST", form={"model": "c"})),
        ]
        done = [commits.commit(outcome) for outcome in outcomes]
        results = await asyncio.gather(*done, return_exceptions=True)
        return [None if result is None else type(result).__name__ for result in results]

    assert asyncio.run(scenario()) == [None, "IntegrityError", None]
    assert ws.store.count("requests") == 3
    assert commits.written == 2
    ws.close()


def test_checkpoints_move_the_wal_into_the_database_file_off_the_loop(tmp_path: Path) -> None:
    ws = Workspace(tmp_path / "hooklab.db")
    hook = ws.create_webhook("models", SEED_TEMPLATE)
    assert isinstance(ws.store, SqliteStore)
    checkpoints = BackgroundCheckpoint(ws.store, every=100)
    size_before = os.path.getsize(ws.path)
    for start in range(0, 300, 50):
        ws.record(
            ws.process(hook.slug, HookRequest.fake("POST", form={"model": str(i)}))
            for i in range(start, start + 50)
        )
        checkpoints.written(50)
    checkpoints.close()
    assert os.path.getsize(ws.path) > size_before  # the pages reached the database file
    assert ws.store.count("requests") == 300
    ws.close()


def test_commit_then_calls_back_once_the_batch_is_in_the_file(tmp_path: Path) -> None:
    ws = Workspace(tmp_path / "hooklab.db")
    hook = ws.create_webhook("models", SEED_TEMPLATE)
    commits = GroupCommit(ws.record)
    seen: list[tuple[Exception | None, int]] = []

    def committed(error: Exception | None) -> None:
        seen.append((error, ws.store.count("requests")))

    async def scenario() -> None:
        for i in range(3):
            outcome = ws.process(hook.slug, HookRequest.fake("POST", form={"model": str(i)}))
            commits.commit_then(outcome, committed)
        assert seen == []  # nothing is answered before the write
        for _ in range(commits.turns):  # the batch gathers for this many turns of the loop
            await asyncio.sleep(0)

    asyncio.run(scenario())
    assert seen == [(None, 3)] * 3
    assert commits.batches == 1
    ws.close()


def test_a_failed_write_is_passed_to_every_callback_and_one_failing_callback_stops_none(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def write(outcomes: Sequence[Outcome]) -> None:
        raise OSError("disk full")

    commits = GroupCommit(write)
    errors: list[str] = []

    def broken(error: Exception | None) -> None:
        raise RuntimeError("listener bug")

    async def scenario() -> None:
        commits.commit_then(Outcome(204), broken)
        commits.commit_then(Outcome(204), lambda error: errors.append(str(error)))
        await asyncio.sleep(0)

    asyncio.run(scenario())
    assert errors == ["disk full"]
    assert "could not answer a stored request" in caplog.text


def test_awaitable_writes_run_up_to_parallel_at_once_and_each_answers_only_its_own(
    tmp_path: Path,
) -> None:
    """As on PostgreSQL: a write that is a round trip. Two may be in flight; what comes while
    both are busy waits, and is written as soon as one commits, with no new request to
    start it."""
    ws = Workspace(tmp_path / "hooklab.db")
    hook = ws.create_webhook("models", SEED_TEMPLATE)
    gates: list[asyncio.Event] = []
    sizes: list[int] = []

    def write(outcomes: Sequence[Outcome]) -> object:
        gate = asyncio.Event()
        gates.append(gate)
        sizes.append(len(outcomes))

        async def commit() -> None:
            await gate.wait()
            ws.record(outcomes)

        return commit()

    def batch(size: int) -> list[asyncio.Future[None]]:
        return [
            commits.commit(ws.process(hook.slug, HookRequest.fake("POST", form={"n": str(i)})))
            for i in range(size)
        ]

    async def turns(count: int) -> None:
        for _ in range(count):
            await asyncio.sleep(0)

    commits = GroupCommit(write, parallel=2)

    async def scenario() -> None:
        first = batch(2)
        await turns(4)
        second = batch(3)
        await turns(4)
        third = batch(1)
        await turns(4)
        assert sizes == [2, 3]  # two in flight; the third waits for one of them
        gates[1].set()  # the second commits first
        await asyncio.gather(*second)
        assert not any(f.done() for f in first + third)
        await turns(4)
        assert sizes == [2, 3, 1]  # started by the commit, not by a new request
        assert not any(f.done() for f in first)
        gates[2].set()
        await asyncio.gather(*third)
        assert not any(f.done() for f in first)
        gates[0].set()
        await asyncio.gather(*first)
        assert not commits.busy

    asyncio.run(scenario())
    assert ws.store.count("requests") == 6
    ws.close()


def test_a_refused_batch_written_one_by_one_keeps_to_one_deadline(tmp_path: Path) -> None:
    """Every sender of a refused batch waits for the whole one-by-one pass: it ends at the
    group's timeout, not after a timeout per request."""
    from hooklab.core.errors import StoreUnavailable

    ws = Workspace(tmp_path / "hooklab.db")
    hook = ws.create_webhook("models", SEED_TEMPLATE)

    def write(outcomes: Sequence[Outcome]) -> object:
        async def slow() -> None:
            if len(outcomes) > 1:
                raise ValueError("one of them is refused")  # each is then tried alone
            await asyncio.sleep(0.3)

        return slow()

    commits = GroupCommit(write, timeout=1.0, parallel=1)

    async def scenario() -> tuple[float, list[BaseException | None]]:
        start = asyncio.get_running_loop().time()
        done = [
            commits.commit(ws.process(hook.slug, HookRequest.fake("POST", form={"n": str(i)})))
            for i in range(10)
        ]
        results = await asyncio.gather(*done, return_exceptions=True)
        return asyncio.get_running_loop().time() - start, list(results)

    took, results = asyncio.run(scenario())
    assert took < 2.0  # ten of 0.3 s each would be 3 s
    assert results[:3] == [None, None, None]
    assert all(isinstance(r, StoreUnavailable) for r in results[4:])
    ws.close()


def test_checkpoints_and_the_outbox_keep_to_the_file_after_the_working_directory_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    ws = Workspace("hooklab.db")  # a relative path, then `%cd` in a notebook
    hook = ws.create_webhook("models", SEED_TEMPLATE)
    assert isinstance(ws.store, SqliteStore)
    writer = ws.store.writer()
    first = ws.store.outbox()
    first.add("https://prefect.example/api")
    first.close()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    ws.record(
        ws.process(hook.slug, HookRequest.fake("POST", form={"model": str(i)})) for i in range(50)
    )
    assert writer.checkpoints is not None
    writer.checkpoints.start()  # on the store's file, not a new one made here
    writer.close()
    outbox = ws.store.outbox()
    assert [d.url for d in outbox.destinations()] == ["https://prefect.example/api"]
    outbox.close()
    assert list(elsewhere.iterdir()) == []
    ws.close()
    # The checkpoint copied the WAL into the file: the WAL's pages are in it.
    assert os.path.getsize(tmp_path / "hooklab.db") > 50 * 1024
