"""The sandboxed environment (SPEC 4): Prefect's limits, the sandbox, tojson, and the budgets."""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest
from sandbox_support import prefects_environment

from hooklab.core.request import Headers, HookRequest, template_context
from hooklab.core.templates import (
    MAX_OUTPUT_BYTES,
    RenderBudgetExceeded,
    TemplateError,
    compile_template,
)


def render(source: str, **context: Any) -> str:
    return compile_template(source).render(context)


def test_text_without_expressions_comes_back_as_it_is() -> None:
    source = '{"event": "static", {# not a comment for Prefect either #} "x": 1}'
    assert render(source) == source


def test_undefined_values_chain_to_empty_text() -> None:
    assert render("[{{ body.missing.deeper }}]", body={}) == "[]"


def test_default_filter_fills_a_missing_value() -> None:
    source = "{{ body.friendly_name|default(body.model) }}"
    assert render(source, body={"model": "m1"}) == "m1"
    assert render(source, body={"model": "m1", "friendly_name": "Model One"}) == "Model One"


def test_headers_are_case_insensitive_in_templates() -> None:
    context = template_context(HookRequest.fake(method="POST", body="12345"))
    source = (
        "{{ headers['Content-Length'] }} {{ headers['content-length'] }} "
        "{{ headers['CoNtEnt-LeNgTh'] }}"
    )
    assert compile_template(source).render(context.as_dict()) == "5 5 5"


def test_query_extension_is_in_the_context() -> None:
    context = template_context(HookRequest.fake(query="source=ci&run=7"))
    assert compile_template("{{ query.source }}-{{ query['run'] }}").render(context.as_dict()) == (
        "ci-7"
    )


def test_tojson_is_html_safe_and_stays_valid_json() -> None:
    value = {"text": "<b>Tom & Jerry's</b>"}
    out = render("{{ body|tojson }}", body=value)
    for raw, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"), ("'", "\\u0027")):
        assert raw not in out
        assert escaped in out
    assert json.loads(out) == value


def test_a_dict_body_renders_as_a_python_repr_as_in_prefect() -> None:
    out = render("{{ body }}", body={"ok": True, "n": None})
    assert out == "{'ok': True, 'n': None}"
    with pytest.raises(json.JSONDecodeError):
        json.loads(out)


def test_humanize_filters_are_available() -> None:
    assert render("{{ 1234567|humanize_intcomma }}") == "1,234,567"


def test_unsafe_attribute_renders_as_empty_text() -> None:
    assert render("[{{ ''.__class__ }}]") == "[]"


def test_calling_through_an_unsafe_attribute_is_a_security_error_with_its_line() -> None:
    with pytest.raises(TemplateError) as caught:
        render('{\n\n  "x": "{{ \'\'.__class__.__mro__[1].__subclasses__() }}"\n}')
    assert caught.value.lineno == 3
    assert "Security error" in str(caught.value)
    assert str(caught.value).startswith("line 3: ")


def test_immutable_sandbox_refuses_to_mutate_the_body() -> None:
    with pytest.raises(TemplateError, match="Security error"):
        render("{{ body.append(1) }}", body=[])


def test_range_up_to_100_items_is_allowed() -> None:
    assert render("{{ range(100)|list|length }}") == "100"


def test_range_past_100_items_fails_with_prefects_text() -> None:
    with pytest.raises(TemplateError) as caught:
        render("{\n{% for i in range(101) %}{% endfor %}\n}")
    assert "Range too big. The sandbox blocks ranges larger than MAX_TEMPLATE_RANGE=100." in str(
        caught.value
    )
    assert caught.value.lineno == 2


def test_render_error_line_points_at_the_template_line() -> None:
    with pytest.raises(TemplateError) as caught:
        render('{\n  "event": "x",\n  "n": {{ 1 / 0 }}\n}')
    assert caught.value.lineno == 3
    assert "ZeroDivisionError: division by zero" in caught.value.message


@pytest.mark.parametrize(
    "expression",
    ["body.customer|tojson", "body.customer.id|tojson", "{'c': body.customer}|tojson(indent=2)"],
)
def test_tojson_of_a_missing_value_names_it_and_the_way_out(expression: str) -> None:
    with pytest.raises(TemplateError) as caught:
        render('{\n  "event": "x",\n  "c": {{ ' + expression + " }}\n}", body={"total": 1})
    assert caught.value.lineno == 3
    assert caught.value.message.startswith("'customer' is missing, and tojson cannot write")
    assert "|default(none) before |tojson" in caught.value.message
    assert "ChainableUndefined" not in caught.value.message
    assert render("{{ body.customer|default(none)|tojson }}", body={}) == "null"


def test_syntax_error_is_refused_at_compile_with_its_line() -> None:
    with pytest.raises(TemplateError) as caught:
        compile_template('{\n  "event": "x",\n  "n": "{{ body.model }"\n}')
    assert caught.value.lineno == 3
    assert str(caught.value).startswith("line 3: Template syntax error:")


def test_more_than_ten_loops_are_refused_at_compile() -> None:
    source = "\n".join("{% for i in range(2) %}{{ i }}{% endfor %}" for _ in range(11))
    with pytest.raises(TemplateError) as caught:
        compile_template(source)
    assert "Contains 11 for loops. Templates can contain no more than 10 for loops." in str(
        caught.value
    )
    assert caught.value.lineno == 11


def test_ten_loops_and_two_levels_of_nesting_are_allowed() -> None:
    loop = "{% for i in range(2) %}{{ i }}{% endfor %}"
    ten = compile_template("\n".join(loop for _ in range(10)))
    assert ten.render({}) == "\n".join(["01"] * 10)
    nested = compile_template("{% for a in x %}{% for b in a %}{{ b }}{% endfor %}{% endfor %}")
    assert nested.render({"x": [[1, 2], [3]]}) == "123"


def test_loops_nested_three_deep_are_refused_at_compile() -> None:
    source = (
        "{% for a in x %}\n{% for b in a %}\n{% for c in b %}{{ c }}{% endfor %}"
        "{% endfor %}{% endfor %}"
    )
    with pytest.raises(TemplateError) as caught:
        compile_template(source)
    assert "Contains nested for loops at a depth of 3." in caught.value.message
    assert "no more than 2 loops deep" in caught.value.message
    assert caught.value.lineno == 3


def test_output_budget_stops_a_render() -> None:
    source = "{% for i in range(100) %}{{ 'x' * 100 }}{% endfor %}"
    assert len(compile_template(source).render({}, max_output=10_000)) == 10_000
    with pytest.raises(RenderBudgetExceeded, match="larger than the limit of 9999 bytes"):
        compile_template(source).render({}, max_output=9_999)


def test_time_budget_stops_a_render_on_an_injected_clock() -> None:
    readings = itertools.count(0.0, 0.25)  # every reading of the clock is a quarter second on
    source = "{% for i in range(100) %}{{ i }},{% endfor %}"
    with pytest.raises(RenderBudgetExceeded, match="took longer than the limit of 1 s"):
        compile_template(source).render({}, clock=lambda: next(readings))
    still = itertools.repeat(0.0)
    assert compile_template(source).render({}, clock=lambda: next(still)).count(",") == 100


def test_time_budget_also_stops_a_loop_that_writes_nothing() -> None:
    readings = itertools.count(0.0, 0.25)
    source = (
        "{% set ns = namespace(n=0) %}"
        "{% for i in range(100) %}{% set ns.n = ns.n + 1 %}{% endfor %}"
    )
    with pytest.raises(RenderBudgetExceeded, match="took longer"):
        compile_template(source).render({}, clock=lambda: next(readings))


@pytest.mark.parametrize(
    "source",
    [
        "{{ 'x' * 100000000 }}",
        "{{ [0] * 100000000 }}",
        "{{ 2 ** 10000000 }}",
        "{{ 'x'|center(1000000000) }}",
        "{{ 'x'.ljust(1000000000) }}",
        "{{ '%0999999999d' % 1 }}",
        "{{ '{:>999999999}'.format(1) }}",
        "{{ ('a' * 1000000)|replace('a', 'bbbb') }}",
        "{{ ([('x' * 1400000)] * 1000)|join }}",
        "{{ range(100)|join('x' * 1400000) }}",
        "{{ lipsum(100000000) }}",
        # Doubling a value in a loop that writes nothing: 2**100 characters if left alone.
        "{% set ns = namespace(x='ab') %}{% for i in range(100) %}"
        "{% set ns.x = ns.x ~ ns.x %}{% endfor %}",
        "{% set ns = namespace(x=99) %}{% for i in range(100) %}"
        "{% set ns.x = ns.x * ns.x %}{% endfor %}",
    ],
)
def test_runaway_expressions_fail_before_they_allocate(source: str) -> None:
    with pytest.raises(TemplateError) as caught:
        compile_template(source).render({})
    assert caught.value.lineno == 1


def test_values_just_within_the_budget_still_render() -> None:
    assert len(render("{{ 'x' * n }}", n=MAX_OUTPUT_BYTES)) == MAX_OUTPUT_BYTES
    assert render("{{ '%5d' % 42 }}|{{ 'ab'.center(6) }}|{{ 'a-b'|replace('-', '+') }}") == (
        "   42|  ab  |a+b"
    )
    assert render(
        "{{ range(4)|map('string')|join('-') }}|{{ lipsum(1, html=False)|length > 0 }}"
    ) == ("0-1-2-3|True")


def test_compile_is_cached_for_the_same_source() -> None:
    assert compile_template("{{ method }}") is compile_template("{{ method }}")


DIFFERENTIAL_CONTEXT: dict[str, Any] = {
    "method": "POST",
    "headers": Headers([("Content-Type", "application/json"), ("X-Count", "7")]),
    "body": {
        "model": "recs",
        "none": None,
        "flag": True,
        "n": 3,
        "x": 1.5,
        "text": 'say "hi" \\ <b> & é',
        "nested": {"a": {"b": [1, "two", None]}},
        "items": "a field named like a dict method",
        "friendly-name": "Recs [Products]",
        "empty": "",
        "list": [3, 1, 2],
    },
}


@pytest.mark.parametrize(
    "source",
    [
        "{{ body.model }}",
        "{{ body['model'] }}",
        "{{ body.none }}|{{ body.flag }}|{{ body.n }}|{{ body.x }}",
        "{{ body.text }}",
        "{{ body.nested }}",
        "{{ body.nested.a.b }}",
        "{{ body.nested.a.b[1] }}",
        "{{ body.nested.a.b[7] }}",
        "{{ body.missing }}|{{ body.missing.deeper }}|{{ nothing }}",
        "{{ body['friendly-name'] }}",
        "{{ body['items'] }}",
        "{{ body.empty|default('fallback') }}|{{ body.missing|default('fallback') }}",
        "{{ body.model|upper }} {{ body.list|length }} {{ body.list|sort|join(',') }}",
        "{{ body|tojson }}",
        "{{ body.text|tojson }}",
        "{{ body }}",
        "{{ method }}{{ method|lower }}",
        "{% if body.flag %}yes{% else %}no{% endif %}",
        "{% for k in body.list %}{{ loop.index }}:{{ k }},{% endfor %}",
        "  {{- body.model -}}  \n  {{ body.n + 1 }}",
        '{"event": "m.{{ body.model }}", "resource": {"prefect.resource.id": "{{ body.n }}"}}',
        "{{ body.n * 2 }} {{ body.text * 2 }} {{ '%05d' % body.n }} {{ body.x ** 2 }}",
        "{{ body.n|humanize_intcomma }}",
        "{{ ''.__class__ }}|{{ body.__class__ }}",
        "{# a comment #}{{ body.model }}",
        "{% raw %}{{ not rendered }}{% endraw %}",
        "{{ headers['Content-Type'] }}|{{ headers['x-count'] }}|{{ headers.missing }}",
        "{{ headers|length }}|{{ headers.get('X-COUNT') }}|{{ 'x-count' in headers }}",
    ],
)
def test_renders_exactly_as_prefects_environment(source: str) -> None:
    expected = prefects_environment().from_string(source).render(DIFFERENTIAL_CONTEXT)
    assert compile_template(source).render(DIFFERENTIAL_CONTEXT) == expected


def test_headers_render_as_json_with_tojson() -> None:
    request = HookRequest.fake(headers={"X-GitHub-Event": "push", "Authorization": "Bearer secret"})
    rendered = compile_template("{{ headers|tojson }}").render(template_context(request).as_dict())
    headers = json.loads(rendered)
    assert headers["X-GitHub-Event"] == "push"
    assert "Authorization" not in headers and "secret" not in rendered


def test_a_batch_is_allowed_by_the_filter_in_the_syntax_tree_not_by_the_text() -> None:
    assert compile_template("{{ body|from_cloud_event(headers) }}").renders_batches
    assert compile_template(
        "{% filter from_cloud_event(headers) %}{{ body }}{% endfilter %}"
    ).renders_batches
    assert not compile_template('[{"note": "from_cloud_event"}]').renders_batches
    assert not compile_template("{# from_cloud_event #}[{{ body|tojson }}]").renders_batches


def test_the_output_budget_holds_for_a_template_without_loops() -> None:
    body = {"s": "x" * 30}
    template = compile_template("{{ body.s }}{{ body.s }}")
    assert template.render({"body": body}, max_output=60) == "x" * 60
    with pytest.raises(RenderBudgetExceeded, match="larger than the limit of 59 bytes"):
        template.render({"body": body}, max_output=59)


def test_globals_are_there_only_for_templates_that_name_them() -> None:
    assert render("{{ range(3)|list }}|{{ namespace(a=1).a }}") == "[0, 1, 2]|1"
    assert render("{{ body.range }}", body={"range": "r"}) == "r"


@pytest.mark.parametrize(
    "source",
    [
        "{% macro m() %}{{ m() }}{% endmacro %}{{ m() }}",
        "{{ body|tojson }}",
        "{{ body|pprint }}",
    ],
)
def test_rendering_too_deep_is_one_line_in_the_users_words(source: str) -> None:
    body: list[object] = []
    for _ in range(5000):
        body = [body]
    with pytest.raises(TemplateError) as caught:
        compile_template(source).render({"body": body})
    assert str(caught.value) == (
        "line 1: Nested too deeply to render: a value with too many levels, or a macro or loop "
        "that calls itself without end"
    )
