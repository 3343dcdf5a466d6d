"""Deterministic mode: the same seed gives the same ids and times, run after run."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import hooklab
from hooklab.core.request import HookRequest
from hooklab.notebook.deterministic import (
    DEFAULT_START,
    FixedClock,
    SeededIds,
    deterministic,
    deterministic_workspace,
)

TEMPLATE = '{"event": "e", "resource": {"prefect.resource.id": "r.{{ body.n }}"}}'


def run_once(tmp_path_file: str) -> list[tuple[str, str, str]]:
    clock, new_id = deterministic(seed=7)
    ws = hooklab.Workspace(tmp_path_file, clock=clock, new_id=new_id)
    hook = ws.create_webhook("det", TEMPLATE)
    for n in range(3):
        ws.receive(hook.slug, HookRequest.fake(method="POST", form={"n": str(n)}, id=f"req-{n}"))
    frame = ws.events()
    ws.close()
    return list(
        zip(frame["id"], frame["occurred"].astype(str), frame["related.webhook"], strict=True)
    )


def test_two_runs_give_identical_events(tmp_path: Path) -> None:
    assert run_once(str(tmp_path / "a.db")) == run_once(str(tmp_path / "b.db"))


def test_different_seeds_give_different_ids() -> None:
    assert SeededIds(1)() != SeededIds(2)()


def test_seeded_ids_are_valid_version_4_uuids() -> None:
    ids = SeededIds(0)
    values = [ids() for _ in range(100)]
    assert len(set(values)) == 100
    assert {value.version for value in values} == {4}


def test_the_clock_is_fixed_unless_given_a_step() -> None:
    fixed = FixedClock()
    assert fixed() == fixed() == DEFAULT_START
    stepping = FixedClock(datetime(2025, 1, 1), step=timedelta(seconds=2))
    assert stepping() == datetime(2025, 1, 1, tzinfo=timezone.utc)
    assert stepping() == datetime(2025, 1, 1, 0, 0, 2, tzinfo=timezone.utc)


def test_webhook_ids_follow_the_seed(tmp_path: Path) -> None:
    hook_ids = []
    for name in ("a.db", "b.db"):
        ws = hooklab.Workspace(tmp_path / name, new_id=SeededIds(3))
        hook_ids.append(ws.create_webhook("a", TEMPLATE).id)
        ws.close()
    assert hook_ids[0] == hook_ids[1]


def _session(path: str, models: int) -> list[str]:
    """One deterministic session on `path`, as the magics open it: a webhook, then requests
    whose ids come from the workspace, as the receiver's do."""
    ws = deterministic_workspace(path)
    hook = ws.create_webhook("det", TEMPLATE)
    outcomes = [
        ws.receive(
            hook.slug, HookRequest.fake(method="POST", form={"n": str(n)}, id=str(ws.new_id()))
        )
        for n in range(models)
    ]
    assert [outcome.status for outcome in outcomes] == [204] * models
    ids = [str(event.id) for outcome in outcomes for event in outcome.events]
    ws.close()
    return ids


def test_three_sessions_on_one_file_store_every_request_under_new_ids(tmp_path: Path) -> None:
    path = str(tmp_path / "home.db")
    sessions = [_session(path, 3) for _ in range(3)]
    ws = hooklab.Workspace(path)
    assert len(ws.requests()) == 9
    assert ws.events()["id"].nunique() == 9
    assert ws.events()["failed"].sum() == 0
    ws.close()
    assert sessions[0] == _session(str(tmp_path / "fresh.db"), 3)  # the first is reproducible


def test_a_later_session_sorts_after_an_earlier_one(tmp_path: Path) -> None:
    path = str(tmp_path / "home.db")
    first = deterministic_workspace(path)
    second = deterministic_workspace(path)
    assert first.clock() == DEFAULT_START
    assert second.clock() == DEFAULT_START + timedelta(days=1)
    first.close()
    second.close()


def test_the_notebook_clock_ticks_so_later_events_sort_later(tmp_path: Path) -> None:
    ws = deterministic_workspace(tmp_path / "home.db")
    hook = ws.create_webhook("det", TEMPLATE)
    for n in range(3):
        ws.receive(hook.slug, HookRequest.fake(method="POST", form={"n": str(n)}, id=f"r{n}"))
    occurred = ws.events()["occurred"].tolist()
    ws.close()
    assert occurred == sorted(occurred) and len(set(occurred)) == 3
    assert occurred[0] > DEFAULT_START and occurred[-1] - occurred[0] < timedelta(minutes=1)
