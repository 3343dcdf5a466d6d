"""The Arrow readout: a window of a long history reads the window; a read of any size runs
beside the store without breaking it; Arrow tables and batches with their types."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pyarrow as pa
import pytest

import hooklab
from hooklab import HookRequest
from hooklab.core.examples import DYNAMIC_TEMPLATE
from hooklab.store import readout
from hooklab.store.filters import HistoryFilter
from hooklab.store.readout import Reader, Reading

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=timezone.utc)


def year_of_history(ws: hooklab.Workspace) -> hooklab.Webhook:
    """A webhook with a request every three days for a year, a failure every tenth."""
    hook = ws.create_webhook("models", DYNAMIC_TEMPLATE)
    outcomes = []
    for day in reversed(range(0, 365, 3)):  # oldest first, as they arrived
        body = b"{" if day % 30 == 0 else f"model=m{day}".encode()
        kind = "application/json" if day % 30 == 0 else "application/x-www-form-urlencoded"
        request = HookRequest.fake(method="POST", body=body, headers={"Content-Type": kind})
        outcomes.append(ws.process(hook.slug, replace(request, received=NOW - timedelta(days=day))))
    ws.record(outcomes)
    return hook


def test_the_last_hour_of_a_year_is_read_from_the_time_index(tmp_path: Path) -> None:
    ws = hooklab.Workspace(tmp_path / "hooklab.db")
    hook = year_of_history(ws)
    reader = Reader.of(ws.store)
    hour = HistoryFilter(since=NOW - timedelta(hours=1))
    for table, where, index in (
        ("events", hour, "events_by_time (received>?)"),
        ("requests", hour, "requests_by_time (received>?)"),
        ("events", replace(hour, failed=True), "events_failed_by_time (received>?)"),
        ("events", replace(hour, webhook=hook.id), "events_by_webhook (webhook_id=? AND rec"),
    ):  # fmt: skip
        plans = reader.plan(table, Reading(where))
        # Each query finds its rows in the index, then reads those rows by their number,
        # in order: none scans the table, and the rows are not sorted.
        for name, plan in plans.items():
            assert any(index in step for step in plan), (name, plan)
            tables = [s for s in plan if "VIRTUAL TABLE" not in s and "CONSTANT ROW" not in s]
            assert not [step for step in tables if step.startswith("SCAN")], (name, plan)
        assert "USE TEMP B-TREE FOR ORDER BY" not in plans["rows"], plans["rows"]
    # The N most recent: the numbers of the last N rows, read backwards from the newest.
    plan = reader.plan("events", Reading(limit=5))["rows"]
    assert "SCAN events" in plan and "USE TEMP B-TREE FOR ORDER BY" not in plan, plan
    assert len(ws.events(since=NOW - timedelta(hours=1))) == 1
    ws.close()


def test_a_large_read_runs_beside_the_store_which_goes_on_writing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(readout, "LOCAL_ROWS", 0)  # every read in the sidecar process
    monkeypatch.setattr(readout, "LOCAL_MOST", 0)
    ws = hooklab.Workspace(tmp_path / "hooklab.db")
    year_of_history(ws)
    ws.forward_to("http://127.0.0.1:4200/api/")
    first = len(ws.events())
    hook = ws.create_webhook("later", DYNAMIC_TEMPLATE)
    for n in range(3):  # each write after a read that ran in the other process
        ws.receive(hook.slug, HookRequest.fake(method="POST", form={"model": str(n)}))
        assert len(ws.events()) == first + n + 1
    outbox = ws.store.outbox()
    [state] = outbox.destinations()
    assert state.pending == 3
    outbox.close()
    ws.close()


def test_arrow_tables_and_batches_keep_their_types(tmp_path: Path) -> None:
    ws = hooklab.Workspace(tmp_path / "hooklab.db")
    year_of_history(ws)
    table = ws.events_arrow(failed=True)
    assert table.num_rows == 13
    assert table.schema.field("received").type == pa.timestamp("us", tz="UTC")
    assert table.schema.field("failed").type == pa.bool_()
    assert table.schema.field("payload").type == pa.string()  # JSON text
    requests = ws.requests_arrow(limit=2)
    assert requests.schema.field("status").type == pa.int64()
    assert requests["received"].to_pylist() == [NOW - timedelta(days=3), NOW]
    count, batches = ws.history_batches("events", HistoryFilter.of(since="2026-04-01"))
    assert count == sum(batch.num_rows for batch in batches) == 11
    ws.close()


def test_an_empty_read_has_every_column_typed() -> None:
    ws = hooklab.Workspace(":memory:")
    table = ws.events_arrow()
    assert table.num_rows == 0
    assert table.schema.field("occurred").type == pa.timestamp("us", tz="UTC")
    assert ws.requests().columns.tolist()[-3:] == ["client", "status", "error"]


def test_a_read_holds_its_arrays_in_the_system_allocator_and_puts_arrows_back(
    tmp_path: Path,
) -> None:
    ws = hooklab.Workspace(tmp_path / "hooklab.db")
    year_of_history(ws)
    default, system = pa.default_memory_pool(), pa.system_memory_pool()
    before = system.bytes_allocated()
    table = ws.events_arrow()
    # Arrow's own allocator commits an arena on its first use, a third of a small read's
    # memory: the read's arrays (here its times) are the system allocator's...
    assert system.bytes_allocated() >= before + 2 * 8 * table.num_rows
    frame = ws.requests()
    # ...and the default is put back.
    assert pa.default_memory_pool().backend_name == default.backend_name != "system"
    assert table.num_rows == len(frame) == 122
    ws.close()


def test_labels_a_sender_names_id_or_name_take_columns_of_their_own(tmp_path: Path) -> None:
    ws = hooklab.Workspace(tmp_path / "hooklab.db")
    template = '{"event": "x", "resource": {{ body|tojson }}}'
    hook = ws.create_webhook("labels", template)
    for n in range(100):
        resource = {"prefect.resource.id": f"r{n}", "prefect.resource.name": "real", "id": "s"}
        ws.receive(hook.slug, HookRequest.fake(method="POST", json=resource))
    for n in range(3):
        resource = {"prefect.resource.id": f"r{n}", "id": "spoof", "name": "n", "id.1": "x"}
        ws.receive(hook.slug, HookRequest.fake(method="POST", json=resource))
    # The last three read alone (by Python's json), then all (by Arrow's reader).
    for frame in (ws.events(limit=3), ws.events()):
        assert not frame.columns.duplicated().any(), frame.columns.tolist()
        assert frame["resource.id"].str.startswith("r").all()  # the resource's id, kept
        assert set(frame["resource.id.1"]) <= {"spoof", "s"}
        frame.to_parquet(tmp_path / "events.parquet")
    assert set(ws.events(limit=3)["resource.id.1.1"]) == {"x"}
    ws.close()
