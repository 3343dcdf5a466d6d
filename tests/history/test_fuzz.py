"""Fuzzing templates: the planted weakness is found and shrunk, robust templates pass, and the
seed docs' templates are fuzzed (what they reveal is in the README)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import hooklab
from hooklab import HookRequest
from hooklab.core.examples import DYNAMIC_TEMPLATE, STATIC_TEMPLATE
from hooklab.history.cases import CaseError, request_from_spec

WEAK = """{
  "event": "order.received",
  "resource": {"prefect.resource.id": "orders"},
  "payload": {
    "sku": {{ body.get("sku") | tojson }},
    "qty": {{ body.qty }}
  }
}"""
ROBUST = """{
  "event": "order.received",
  "resource": {"prefect.resource.id": "orders"},
  "payload": {"qty": {{ body.get("qty") | tojson }}, "sku": {{ body.get("sku") | tojson }}}
}"""
ORDER = {"method": "POST", "json": {"sku": "A-1", "qty": 2}}


def test_the_unquoted_number_is_found_within_the_default_budget_and_shrunk() -> None:
    report = hooklab.fuzz(WEAK, examples=[ORDER])
    failures = report.failures
    on_qty = failures[failures["line"] == 6]
    assert len(on_qty) == 1, str(report)
    row = on_qty.iloc[0]
    assert row["error"].startswith("Template output is not valid JSON")
    assert row["template_line"] == '6 |     "qty": {{ body.qty }}'
    # shrunk: the example with one change, and that request really fails
    assert set(row["request"]["json"]) <= {"sku", "qty"} and row["request"]["json"] != ORDER["json"]
    replayed = hooklab.render_events(
        hooklab.Workspace(":memory:").create_webhook("w", WEAK),
        request_from_spec(row["request"], "x"),
    )
    assert replayed.failed
    assert not report.passed and "distinct error" in str(report)


def test_one_row_per_distinct_error() -> None:
    failures = hooklab.fuzz(WEAK, examples=[ORDER]).failures
    keys = list(zip(failures["reason"], failures["line"], strict=True))
    assert len(keys) == len(set(keys))


def test_a_robust_template_passes() -> None:
    report = hooklab.fuzz(ROBUST, examples=[ORDER])
    assert report.passed and report.failures.empty
    assert report.tried >= 100


def test_the_same_seed_finds_the_same_requests() -> None:
    first = hooklab.fuzz(WEAK, examples=[ORDER], seed=3, max_examples=50).failures
    again = hooklab.fuzz(WEAK, examples=[ORDER], seed=3, max_examples=50).failures
    assert first["request"].tolist() == again["request"].tolist()


def test_examples_may_be_captured_requests_case_files_or_request_files(tmp_path: Path) -> None:
    case = tmp_path / "case.json"
    case.write_text(json.dumps({"request": ORDER, "expect": {"status": 204}}))
    request = tmp_path / "request.json"
    request.write_text(json.dumps(ORDER))
    captured = HookRequest.fake("POST", json=ORDER["json"])
    for example in (case, str(request), captured):
        assert (
            6 in hooklab.fuzz(WEAK, examples=[example], max_examples=100).failures["line"].tolist()
        )
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(CaseError, match=r"bad\.json"):
        hooklab.fuzz(WEAK, examples=[tmp_path / "bad.json"])


def test_without_examples_the_fields_the_template_reads_are_the_example() -> None:
    assert 6 in hooklab.fuzz(WEAK).failures["line"].tolist()


# The seed docs' templates (hooklab.core.examples), as the README's "Templates under test" says.


def test_the_static_template_takes_any_request() -> None:
    assert hooklab.fuzz(STATIC_TEMPLATE, examples=[ORDER]).passed


def test_the_dynamic_template_breaks_on_quotes_backslashes_and_newlines_in_form_fields() -> None:
    form = {"method": "POST", "form": {"model": "recs", "friendly_name": "Recommendations"}}
    failures = hooklab.fuzz(DYNAMIC_TEMPLATE, examples=[form]).failures
    assert {4, 5} <= set(failures["line"].dropna())  # model and friendly_name, unescaped
    assert failures["error"].str.startswith("Template output is not valid JSON").all()
    breaking = {value for request in failures["request"] for value in request["form"].values()}
    assert any(char in value for value in breaking for char in '"\\\n')
