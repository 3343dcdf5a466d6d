"""Webhook cases (SPEC 13): read, run through the receiver's path, compare, export."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hooklab import HookRequest
from hooklab.history.casefiles import CaseError, read_case, spec_from_request
from hooklab.history.casereport import case_report
from hooklab.history.cases import run_cases, update_case

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
    assert result.passed, case_report(result)


def test_a_differing_field_is_named_with_both_values_and_the_rendered_text(tmp_path: Path) -> None:
    expect = {"status": 204, "events": [{"event": "order.paid", "payload": {"qty": 3}}]}
    folder(tmp_path, off={"request": PAID, "expect": expect})
    (result,) = run_cases(tmp_path / "webhooks")
    assert not result.passed
    report = case_report(result)
    assert 'events[0].payload["qty"]: expected 3, got 2' in report
    assert '"payload": {"qty": 2}' in report  # the rendered text


def test_a_failure_quotes_the_template_line_it_breaks_on(tmp_path: Path) -> None:
    request = {"json": {"kind": "paid", "id": 7}}
    folder(tmp_path, noqty={"request": request, "expect": {"status": 204}})
    (result,) = run_cases(tmp_path / "webhooks")
    report = case_report(result)
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
        case_report(result)
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
