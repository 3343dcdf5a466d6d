"""Fuzzing templates: the planted weakness is found and shrunk, robust templates pass, and the
seed docs' templates are fuzzed (what they reveal is in the README)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import hooklab
from hooklab import HookRequest
from hooklab.core.examples import DYNAMIC_TEMPLATE, STATIC_TEMPLATE
from hooklab.history.casefiles import CaseError, request_from_spec

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
    assert list(report.failures.columns[:3]) == ["message", "fix", "line"]
    found: list[dict[str, Any]] = report.found
    assert {row["cause"] for row in found} == {"missing", "not-json"}, str(report)
    assert {row["line"] for row in found} == {6}  # a value missing at a line's end: that line
    for row in found:
        assert row["template_line"] == '6 |     "qty": {{ body.qty }}'
        assert row["field"] == "body.qty" and "tojson" in row["fix"]
        assert row["error"].startswith("Template output is not valid JSON")
        # shrunk: the example with one change, and that request really fails
        request = row["request"]["json"]
        assert set(request) <= {"sku", "qty"} and request != ORDER["json"]
        replayed = hooklab.render_events(
            hooklab.Workspace(":memory:").create_webhook("w", WEAK),
            request_from_spec(row["request"], "x"),
        )
        assert replayed.failed
    [missing] = [row for row in found if row["cause"] == "missing"]
    assert missing["fix"] == '"qty": {{ body.qty|default(none)|tojson }}'
    assert missing["message"].startswith("body.qty is missing from the request")
    assert not report.passed and "2 causes of failure, on 1 template line" in str(report)


def test_one_row_per_cause_template_line_and_field() -> None:
    found = hooklab.fuzz(WEAK, examples=[ORDER]).found
    keys = [(row["cause"], row["line"], row["field"]) for row in found]
    assert len(keys) == len(set(keys))


SHOP = """{
  "event": "shop.order.{{ body.order_id }}",
  "resource": {"prefect.resource.id": "shop.customer.{{ body.customer.id }}"},
  "payload": {"customer": {{ body.customer|tojson }}}
}"""
SHOP_ORDER = {"method": "POST", "json": {"order_id": "A1", "customer": {"id": "c1"}}}


def test_findings_read_as_one_cause_with_its_fix_and_shortened_values() -> None:
    report = hooklab.fuzz(SHOP, examples=[SHOP_ORDER])
    found: list[dict[str, Any]] = report.found
    assert all(row["line"] is not None for row in found)  # a line break in a value included
    quoted = {row["line"]: row for row in found if row["cause"] == "text-in-quotes"}
    assert sorted(quoted) == [2, 3]  # one finding a line, whichever character broke it
    first = quoted[2]
    assert first["fix"] == '"event": {{ ("shop.order." ~ body.order_id)|tojson }},'
    assert first["message"].startswith("body.order_id is written inside a JSON string as it is")
    assert len(first["breaks_on"]) > 1  # other values that break it the same way
    text = str(report)
    assert text.count("Request text written inside quotes as it is") == 1  # one heading
    assert "A quote, a backslash or a line break in a sender" in " ".join(text.split())
    assert "Invalid control character" not in text  # the parser's words stay in .error
    [missing] = [row for row in found if row["cause"] == "missing"]
    assert missing["message"].startswith("body.customer is missing from the request")
    assert "ChainableUndefined" not in text
    assert missing["fix"] == '"payload": {"customer": {{ body.customer|default(none)|tojson }}}'
    assert "x" * 100 not in text and "(5,000 characters)" in text  # long values cut
    # the fixes, applied, leave fuzzing only the event name's length to find
    fixed = SHOP.splitlines()
    for row in found:
        if row["fix"] and row["cause"] != "rejected":
            line = fixed[row["line"] - 1]
            fixed[row["line"] - 1] = line[: len(line) - len(line.lstrip())] + row["fix"]
    again = hooklab.fuzz("\n".join(fixed), examples=[SHOP_ORDER]).found
    assert {row["cause"] for row in again} <= {"rejected"}


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


# Every fix is checked: the template with it renders valid events on what broke it.

TWO_LINES = """{
  "event": "shop.order.{{ body.order_id }}",
  "resource": {"prefect.resource.id": "shop.order.{{ body.order_id }}"}
}"""
STATUS_AND_ID = '{"event": "shop.order.{{ body.status }}.{{ body.order_id }}", "resource": {"prefect.resource.id": "shop.order.{{ body.order_id }}"}}'  # noqa: E501
PAID = {"method": "POST", "json": {"order_id": "A1", "status": "paid"}}


def _explained(template: str, body: dict[str, Any]) -> Any:
    from hooklab.history.explain import explain
    from hooklab.history.replay import draft_webhook

    outcome = hooklab.render_events(draft_webhook(template), HookRequest.fake(json=body))
    assert outcome.failed
    return explain(template, outcome)


def test_a_value_too_long_is_blamed_on_its_field_and_cut_before_tojson() -> None:
    from hooklab.history.explain import checked_fix

    for value in ("x" * 5000, {"deep": "x" * 5000}, ["x" * 5000]):
        explanation = _explained(STATUS_AND_ID, {"order_id": value, "status": "paid"})
        assert explanation.cause.value == "rejected" and explanation.field == "body.order_id"
        assert "body.order_id is written there" in explanation.message
        assert "[:1024]|tojson }}" in explanation.fix  # cut first, then written as JSON
        broken = HookRequest.fake(json={"order_id": value, "status": "paid"})
        good = HookRequest.fake(json=PAID["json"])
        assert checked_fix(STATUS_AND_ID, explanation, [broken, good]) == explanation.fix


def test_a_backslash_that_leaves_the_last_string_open_is_text_in_quotes() -> None:
    template = (
        '{"resource": {"prefect.resource.id": "x"}, "event": "product.models.{{ body.model }}"}'
    )
    explanation = _explained(template, {"model": "\\"})
    assert explanation.cause.value == "text-in-quotes" and explanation.field == "body.model"
    assert explanation.fix == (
        '{"resource": {"prefect.resource.id": "x"}, "event": {{ ("product.models." ~ '
        "body.model)|tojson }}}"
    )


def test_the_same_pattern_on_two_lines_is_reported_on_both_with_one_fixed_template() -> None:
    report = hooklab.fuzz(TWO_LINES, examples=[PAID])
    [row] = [row for row in report.found if row["cause"] == "text-in-quotes"]
    assert row["lines"] == [2, 3]
    assert row["fixed_template"].count("|tojson }}") == 2
    assert "on template lines 2, 3; the template fixed on all of them:" in str(report)
    assert hooklab.fuzz(row["fixed_template"], examples=[PAID]).passed is False  # length only
    again = hooklab.fuzz(row["fixed_template"], examples=[PAID]).found
    assert {r["cause"] for r in again} == {"rejected"}


@pytest.mark.parametrize(
    ("template", "example"),
    [
        (WEAK, ORDER),
        (SHOP, SHOP_ORDER),
        (TWO_LINES, PAID),
        (STATUS_AND_ID, PAID),
        (DYNAMIC_TEMPLATE, {"method": "POST", "form": {"model": "m", "friendly_name": "M"}}),
    ],
)
def test_every_fix_fuzz_suggests_fixes_the_requests_that_broke_the_template(
    template: str, example: dict[str, Any]
) -> None:
    from hooklab.history.fixes import renders_valid_events, with_line

    report = hooklab.fuzz(template, examples=[example])
    assert any(row["fix"] for row in report.found), str(report)
    for row in report.found:
        tried = [request_from_spec(row["request"], "x"), request_from_spec(example, "x")]
        if row["fix"]:
            fixed = with_line(template, row["line"], row["fix"])
            assert renders_valid_events(fixed, tried), (row["fix"], row["request"])
        if row["fixed_template"]:
            assert renders_valid_events(row["fixed_template"], tried)


def test_a_cut_after_tojson_is_fixed_by_cutting_before_it_not_by_tojson_again() -> None:
    from hooklab.history.explain import checked_fix

    template = (
        '{"event": {{ (("shop.order." ~ body.order_id)|tojson)[:200] }}, '
        '"resource": {"prefect.resource.id": "x"}}'
    )
    for value in ("x" * 5000, {"deep": "x" * 5000}):
        explanation = _explained(template, {"order_id": value})
        assert explanation.fix == (
            '{"event": {{ (("shop.order." ~ body.order_id)|string)[:200]|tojson }}, '
            '"resource": {"prefect.resource.id": "x"}}'
        )
        broken = HookRequest.fake(json={"order_id": value})
        assert checked_fix(template, explanation, [broken]) == explanation.fix


def test_tojson_left_inside_quotes_is_told_to_lose_the_quotes_with_a_fix_that_works() -> None:
    from hooklab.history.replay import draft_webhook

    quoted = '{"event": "{{ ("shop.order." ~ body.order_id)|tojson }}", "resource": {"x": "y"}}'
    quoted = quoted.replace('"x": "y"', '"prefect.resource.id": "r"')
    explanation = _explained(quoted, {"order_id": "A1"})
    assert "already writes a JSON string with its own quotes" in explanation.message
    assert explanation.fix == (
        '{"event": {{ ("shop.order." ~ body.order_id)|tojson }}, '
        '"resource": {"prefect.resource.id": "r"}}'
    )
    fixed = hooklab.render_events(
        draft_webhook(explanation.fix), HookRequest.fake(json={"order_id": "A\\1"})
    )
    assert not fixed.failed and fixed.events[0].event == "shop.order.A\\1"
