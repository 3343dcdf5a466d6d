"""Tracing a render: each part of the output is traced to the template line that wrote it,
whatever a value did to the output's own lines."""

from __future__ import annotations

import json

import pytest

from hooklab.core.tracing import START, trace

SHOP = """{
  "event": "shop.order.{{ body.order_id }}",
  "resource": {"prefect.resource.id": "shop"},
  "payload": {"total": {{ body.total }}}
}"""


def json_error_offset(text: str) -> int:
    with pytest.raises(json.JSONDecodeError) as caught:
        json.loads(text)
    return caught.value.pos


def test_a_line_break_in_a_value_is_traced_to_the_line_that_wrote_it() -> None:
    found = trace(SHOP, {"body": {"order_id": "A\n1", "total": 2}})
    assert found is not None
    assert found.text.splitlines()[2] == '1",'  # the output's own lines have moved
    offset = json_error_offset(found.text)
    assert found.line_at(offset) == 2
    [span] = found.expressions_before(offset)
    assert span.piece.expression == 0
    assert found.text[span.start : span.end] == "A\n1"
    # text after the value is traced to its own line, shifted output or not
    assert found.line_at(found.text.index('"payload"')) == 4


def test_a_value_that_writes_nothing_is_what_a_json_error_after_it_comes_from() -> None:
    found = trace(SHOP, {"body": {"order_id": "A-1"}})
    assert found is not None
    offset = json_error_offset(found.text)
    span = found.expressions_before(offset)[-1]
    assert (span.piece.line, span.piece.expression) == (4, 1)
    assert span.start == span.end == offset  # where it would have written


def test_an_error_in_the_templates_own_text_is_traced_to_its_line() -> None:
    broken = (
        '{\n  "event": "{{ body.x }}",\n  "resource": {"prefect.resource.id": "r"}\n  "oops": 1\n}'
    )
    found = trace(broken, {"body": {"x": "e"}})
    assert found is not None
    offset = json_error_offset(found.text)
    assert found.line_at(offset) == 4


def test_loops_and_macros_trace_each_item_to_its_line() -> None:
    template = (
        "{% macro quoted(v) %}\n"
        '"{{ v }}"\n'
        "{% endmacro %}"
        "[{% for x in body.names %}\n"
        "{{ quoted(x) }},{% endfor %}]"
    )
    found = trace(template, {"body": {"names": ["a", "b"]}})
    assert found is not None
    inner = [s for s in found.spans if found.text[s.start : s.end] in ("a", "b")]
    assert [s.piece.line for s in inner] == [2, 2]  # the innermost piece: the macro's line
    assert found.line_at(found.text.index(",")) == 4


def test_marks_in_a_value_make_the_trace_refuse_rather_than_guess() -> None:
    assert trace(SHOP, {"body": {"order_id": START + "x", "total": 1}}) is None


def test_a_template_that_fails_to_render_has_no_trace() -> None:
    assert trace('{"a": {{ body.x|tojson }}}', {"body": {}}) is None


def test_text_without_expressions_is_one_piece() -> None:
    found = trace('{"event": "e"}\n', {})
    assert found is not None and found.line_at(3) == 1
