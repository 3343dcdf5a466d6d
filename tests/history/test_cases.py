"""Webhook cases (SPEC 13): read, run through the receiver's path, compare, export."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hooklab import HookRequest, Workspace
from hooklab.history.cases import (
    CaseError,
    export_cases,
    read_case,
    run_cases,
    spec_from_request,
    update_case,
)

ORDERS = """{
  "event": "order.{{ body.kind }}",
  "resource": {"prefect.resource.id": "order.{{ body.id }}"},
  "payload": {"qty": {{ body.qty }}}
}"""


def folder(root: Path, template: str = ORDERS, **cases: dict[str, object]) -> Path:
    path = root / "webhooks" / "orders"
    (path / "cases").mkdir(parents=True)
    (path / "template.j2").write_text(template)
    for name, case in cases.items():
        (path / "cases" / f"{name}.json").write_text(json.dumps(case))
    return path


PAID = {"json": {"kind": "paid", "id": 7, "qty": 2}}


def test_a_case_that_matches_passes_and_ids_and_times_are_ignored(tmp_path: Path) -> None:
    expect = {"status": 204, "events": [{"event": "order.paid", "payload": {"qty": 2}}]}
    folder(tmp_path, ok={"request": PAID, "expect": expect})
    (result,) = run_cases(tmp_path / "webhooks")
    assert result.passed, result.report()


def test_a_differing_field_is_named_with_both_values_and_the_rendered_text(tmp_path: Path) -> None:
    expect = {"status": 204, "events": [{"event": "order.paid", "payload": {"qty": 3}}]}
    folder(tmp_path, off={"request": PAID, "expect": expect})
    (result,) = run_cases(tmp_path / "webhooks")
    assert not result.passed
    report = result.report()
    assert 'events[0].payload["qty"]: expected 3, got 2' in report
    assert '"payload": {"qty": 2}' in report  # the rendered text


def test_a_failure_quotes_the_template_line_it_breaks_on(tmp_path: Path) -> None:
    request = {"json": {"kind": "paid", "id": 7}}
    folder(tmp_path, noqty={"request": request, "expect": {"status": 204}})
    (result,) = run_cases(tmp_path / "webhooks")
    report = result.report()
    assert "status: expected 204, got 400" in report
    assert '4 |   "payload": {"qty": {{ body.qty }}}' in report


def test_an_expected_error_passes_when_the_error_contains_its_text(tmp_path: Path) -> None:
    expect = {"status": 400, "error": "not valid JSON"}
    folder(tmp_path, bad={"request": {"json": {"id": 1}}, "expect": expect})
    assert run_cases(tmp_path)[0].passed


def test_nested_keys_are_compared_exactly(tmp_path: Path) -> None:
    expect = {"status": 204, "events": [{"resource": {}}]}
    folder(tmp_path, extra={"request": PAID, "expect": expect})
    (result,) = run_cases(tmp_path)
    assert 'events[0].resource["prefect.resource.id"]: expected (absent), got "order.7"' in (
        result.report()
    )


def test_update_rewrites_the_expectation_without_ids_or_times(tmp_path: Path) -> None:
    path = folder(tmp_path, c={"request": PAID, "expect": {"status": 500}})
    (result,) = run_cases(tmp_path)
    update_case(result)
    written = json.loads((path / "cases" / "c.json").read_text())
    assert written["request"] == PAID
    (event,) = written["expect"]["events"]
    assert event["event"] == "order.paid" and event["payload"] == {"qty": 2}
    assert not {"id", "occurred", "received"} & set(event)
    assert "related" not in event  # only the webhook's own, which the case leaves out
    assert run_cases(tmp_path)[0].passed


def test_webhook_json_disabled_answers_as_the_receiver_would(tmp_path: Path) -> None:
    path = folder(tmp_path, c={"request": PAID, "expect": {"status": 400, "error": "disabled"}})
    (path / "webhook.json").write_text('{"enabled": false}')
    assert run_cases(tmp_path)[0].passed


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{not json", "not JSON"),
        ('{"expect": {}}', 'a case is {"request"'),
        ('{"request": {"json": 1, "form": {}}, "expect": {}}', "give only one of body, json"),
        ('{"request": {}, "expect": {"events": 3}}', "expect.events must be a list"),
    ],
)
def test_a_malformed_case_is_one_line_naming_the_file(
    tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "broken.json"
    path.write_text(text)
    with pytest.raises(CaseError) as caught:
        read_case(path)
    assert str(path) in str(caught.value) and message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_other_json_files_are_not_cases(tmp_path: Path) -> None:
    (tmp_path / "webhooks" / "nocases" / "cases").mkdir(parents=True)
    (tmp_path / "webhooks" / "nocases" / "cases" / "x.json").write_text("{broken")
    (tmp_path / "package.json").write_text("{broken")
    assert run_cases(tmp_path) == []


def test_a_captured_request_reads_back_as_the_same_template_input() -> None:
    form = HookRequest.fake("POST", form={"model": "m 1", "x": "&"}, query="a=1")
    spec = spec_from_request(form)
    assert spec["form"] == {"model": "m 1", "x": "&"} and spec["query"] == "a=1"
    assert "Content-Length" not in spec["headers"]
    raw = HookRequest.fake("POST", body="plain text", headers={"Content-Type": "text/plain"})
    assert spec_from_request(raw)["body"] == "plain text"
    secret = HookRequest.fake("POST", json={"a": 1}, headers={"Authorization": "Bearer k"})
    assert spec_from_request(secret) == {
        "method": "POST",
        "headers": {"Content-Type": "application/json"},
        "json": {"a": 1},
    }


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


def test_the_workspace_exports_cases_too(tmp_path: Path) -> None:
    ws = captured_workspace(tmp_path)
    written = ws.export_cases("orders", tmp_path / "webhooks" / "orders", dedupe=True)
    assert [json.loads(p.read_text())["request"]["json"]["id"] for p in written] == [1, 3, 4]
    assert all(result.passed for result in run_cases(tmp_path / "webhooks"))
