"""Captured requests exported as cases (SPEC 13): what a case keeps of a request, and what the
export does to a folder a person also writes in."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import hooklab
from hooklab import HookRequest, Workspace
from hooklab.history.cases import run_cases
from hooklab.history.exports import export_cases

ORDERS = """{
  "event": "order.{{ body.kind }}",
  "resource": {"prefect.resource.id": "order.{{ body.id }}"},
  "payload": {"qty": {{ body.qty }}}
}"""


def captured_workspace(path: Path) -> Workspace:
    ws = Workspace(path / "hooklab.db")
    hook = ws.create_webhook("orders", ORDERS, "Orders from the shop")
    for body in (
        {"kind": "paid", "id": 1, "qty": 2},
        {"kind": "paid", "id": 2, "qty": 5},  # the same shape as the first
        {"kind": "paid", "id": 3},  # fails: qty missing
        {"kind": "refund", "id": 4, "qty": "2"},  # a string qty: a different shape
    ):
        ws.receive(hook.slug, HookRequest.fake("POST", json=body))
    return ws


def test_export_writes_a_folder_whose_cases_pass(tmp_path: Path) -> None:
    ws = captured_workspace(tmp_path)
    written = export_cases(ws, "orders", tmp_path / "webhooks" / "orders")
    assert [p.name for p in written] == [f"case-00{n}.json" for n in range(1, 5)]
    target = tmp_path / "webhooks" / "orders"
    assert (target / "template.j2").read_text() == ORDERS
    assert json.loads((target / "webhook.json").read_text()) == {
        "description": "Orders from the shop"
    }
    third = json.loads(written[2].read_text())
    assert third["expect"]["status"] == 400
    assert "not valid JSON" in third["expect"]["error"]
    results = run_cases(tmp_path / "webhooks")
    assert len(results) == 4 and all(r.passed for r in results)


def test_export_dedupe_limit_and_since(tmp_path: Path) -> None:
    ws = captured_workspace(tmp_path)
    deduped = export_cases(ws, "orders", tmp_path / "a", dedupe=True)
    bodies = [json.loads(p.read_text())["request"]["json"]["id"] for p in deduped]
    assert bodies == [1, 3, 4]
    limited = export_cases(ws, "orders", tmp_path / "b", limit=2)
    assert [json.loads(p.read_text())["request"]["json"]["id"] for p in limited] == [3, 4]
    assert export_cases(ws, "orders", tmp_path / "c", since="2999-01-01") == []


def test_the_package_exports_cases_too(tmp_path: Path) -> None:
    ws = captured_workspace(tmp_path)
    written = hooklab.export_cases(ws, "orders", tmp_path / "webhooks" / "orders", dedupe=True)
    assert [json.loads(p.read_text())["request"]["json"]["id"] for p in written] == [1, 3, 4]
    assert all(result.passed for result in run_cases(tmp_path / "webhooks"))


def test_exporting_the_same_traffic_again_changes_nothing(tmp_path: Path) -> None:
    ws = captured_workspace(tmp_path)
    target = tmp_path / "webhooks" / "orders"
    first = export_cases(ws, "orders", target)
    assert first.written[:2] == ["template.j2", "webhook.json"] and not first.unchanged
    texts = {path: path.read_text() for path in target.rglob("*") if path.is_file()}
    again = export_cases(ws, "orders", target)
    assert (again.written, again.removed, again.kept) == ([], [], [])
    assert len(again.unchanged) == 6 and list(again) == list(first)
    assert {path: path.read_text() for path in target.rglob("*") if path.is_file()} == texts
    assert str(again).splitlines()[1].startswith("  unchanged: template.j2, webhook.json")


def test_a_record_that_names_a_file_outside_the_folder_removes_nothing(tmp_path: Path) -> None:
    ws = captured_workspace(tmp_path)
    target = tmp_path / "webhooks" / "orders"
    export_cases(ws, "orders", target)
    victim = tmp_path / "notes.txt"
    victim.write_text("mine")
    record = target / ".hooklab-export.json"
    data = json.loads(record.read_text())
    data["files"]["cases/../../../notes.txt"] = hashlib.sha256(b"mine").hexdigest()
    record.write_text(json.dumps(data))
    report = export_cases(ws, "orders", target, limit=1)
    assert victim.read_text() == "mine"
    assert report.removed == ["cases/case-002.json", "cases/case-003.json", "cases/case-004.json"]
