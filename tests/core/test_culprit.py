"""A failure's stored error says its cause in words, with the template line and the fix; a
case's expectation keeps the parser's words, so cases written before still pass."""

from __future__ import annotations

import hooklab
from hooklab import HookRequest
from hooklab.core.culprit import parser_words
from hooklab.history.expectations import compare, expectation
from hooklab.history.replay import draft_webhook

SHOP = (
    '{"event": "shop.order.{{ body.order_id }}",\n'
    ' "resource": {"prefect.resource.id": "s"}, "payload": {"n": {{ body.n }}}}'
)


def _error(body: dict[str, object]) -> str:
    outcome = hooklab.render_events(draft_webhook(SHOP), HookRequest.fake(json=body))
    assert outcome.failed and outcome.error
    return outcome.error


def test_a_backslash_is_named_with_its_field_template_line_and_fix() -> None:
    assert _error({"order_id": "A\\1", "n": 1}) == (
        "Template output is not valid JSON: a backslash in body.order_id (line 1 of the "
        'template) is written into a JSON string unescaped: write {{ ("shop.order." ~ '
        "body.order_id)|tojson }} (Invalid \\escape at line 1 column 24 (char 23))"
    )


def test_a_value_missing_or_not_json_is_named_with_its_fix() -> None:
    missing = _error({"order_id": "A1"})
    assert "body.n (line 2 of the template) wrote nothing where a JSON value goes" in missing
    assert "write {{ body.n|default(none)|tojson }}" in missing
    text = _error({"order_id": "A1", "n": "abc"})
    assert "body.n (line 2 of the template) is written bare" in text
    assert "write {{ body.n|tojson }}" in text


def test_a_cases_expectation_keeps_the_parsers_words_so_older_cases_pass() -> None:
    outcome = hooklab.render_events(
        draft_webhook(SHOP), HookRequest.fake(json={"order_id": "A\\1", "n": 1})
    )
    older = "Template output is not valid JSON: Invalid \\escape at line 1 column 24"
    assert parser_words(outcome.error or "").startswith(older)
    assert expectation(outcome) == {"status": 400, "error": older}
    assert compare({"status": 400, "error": older}, outcome) == []


def test_a_tojson_left_inside_quotes_is_told_to_lose_the_quotes_not_to_add_tojson() -> None:
    """The fix applied with its quotes kept: every request fails, and more tojson would only
    put quotes inside the event's name."""
    quoted = '{"event": "{{ ("shop.order." ~ body.order_id)|tojson }}", "resource": {"a": "b"}}'
    outcome = hooklab.render_events(
        draft_webhook(quoted), HookRequest.fake(json={"order_id": "A1"})
    )
    assert outcome.failed and outcome.error
    assert (
        '("shop.order." ~ body.order_id)|tojson (line 1 of the template) already writes a JSON '
        "string with its own quotes, inside a quoted string: remove the quotes around "
        '{{ ("shop.order." ~ body.order_id)|tojson }}'
    ) in outcome.error
    assert "|string|tojson" not in outcome.error
