"""The sandbox (SPEC 4): every filter renders as Prefect's own environment renders it, and nothing
a template can reach (filter, test, global, method, operator) builds far past the render budget.

The budget tests render in a child process capped in memory (`sandbox_support.render_in_child`):
a template that escapes the budget there fails its own test, with a MemoryError or as a render
that never finished, instead of taking the test run down.
"""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from sandbox_support import prefects_environment, render_in_child

from hooklab.core.sandbox import ENVIRONMENT
from hooklab.core.templates import TemplateError, compile_template

# One use of each filter, compared with what Jinja's own sandbox renders (Prefect's templates).
FILTER_SAMPLES = {
    "abs": "{{ (-3)|abs }}",
    "attr": "{% set ns = namespace(a=1) %}{{ ns|attr('a') }}",
    "batch": "{{ [1, 2, 3, 4, 5]|batch(2, 0)|list }}",
    "capitalize": "{{ 'hello World'|capitalize }}",
    "center": "{{ 'ab'|center(8) }}|",
    "count": "{{ [1, 2]|count }}",
    "d": "{{ missing|d('x') }}",
    "default": "{{ body.none|default('y', true) }}",
    "dictsort": "{{ {'b': 1, 'a': 2}|dictsort(by='value') }}",
    "e": "{{ '<a>'|e }}",
    "escape": "{{ '<a & b>'|escape }}",
    "filesizeformat": "{{ 123456789|filesizeformat }} {{ 2048|filesizeformat(true) }}",
    "first": "{{ [3, 4]|first }}",
    "float": "{{ '1.5'|float + 1 }}",
    "forceescape": "{{ '<b>'|forceescape }}",
    "format": "{{ '%s-%05d'|format('a', 7) }}",
    "groupby": "{{ [{'k': 1, 'v': 'a'}, {'k': 2, 'v': 'b'}]|groupby('k')|list }}",
    "indent": "{{ 'a\nb\n\nc'|indent(2, true) }}",
    "int": "{{ '42'|int + '0x1A'|int(base=16) }}",
    "items": "{{ {'a': 1}|items|list }}",
    "join": "{{ [1, 2]|join('-') }} {{ [{'n': 'a'}, {'n': 'b'}]|join(',', attribute='n') }}",
    "last": "{{ [3, 4]|last }}",
    "length": "{{ 'abc'|length }}",
    "list": "{{ 'ab'|list }}",
    "lower": "{{ 'AB'|lower }}",
    "map": "{{ ['a', 'b']|map('upper')|list }} {{ body.list|map('string')|join }}",
    "max": "{{ [3, 1, 2]|max }}",
    "min": "{{ ['b', 'A', 'c']|min }}",
    "pprint": "{{ {'a': [1, 2]}|pprint }}",
    "random": "{{ [7]|random }}",
    "reject": "{{ [1, 2, 3]|reject('odd')|list }}",
    "rejectattr": "{{ [{'a': 1}, {'a': 0}]|rejectattr('a')|list }}",
    "replace": "{{ 'aXbX'|replace('X', '-', 1) }}",
    "reverse": "{{ 'abc'|reverse }} {{ [1, 2]|reverse|list }}",
    "round": "{{ 2.567|round(1, 'floor') }} {{ 2.5|round }}",
    "safe": "{{ '<b>'|safe }}",
    "select": "{{ [1, 2, 3]|select('odd')|list }}",
    "selectattr": "{{ [{'a': 1}, {'a': 0}]|selectattr('a', 'eq', 1)|list }}",
    "slice": "{{ [1, 2, 3, 4, 5]|slice(2, 0)|list }}",
    "sort": "{{ [3, 1, 2]|sort(reverse=true) }}",
    "string": "{{ 5|string ~ 'x' }}",
    "striptags": "{{ '<p>a  <b>b</b></p>'|striptags }}",
    "sum": "{{ [1, 2, 3]|sum(start=10) }} {{ [[1], [2]]|sum(start=[]) }}",
    "title": "{{ 'hello wORLD'|title }}",
    "tojson": "{{ {'a': '<x>', 'b': [1]}|tojson }} {{ {'a': [1, {'b': 2}]}|tojson(indent=2) }}",
    "trim": "{{ '  ab  '|trim }}|{{ 'xxabxx'|trim('x') }}",
    "truncate": "{{ 'hello world foo bar'|truncate(9, true, '~', 0) }}",
    "unique": "{{ [1, 1, 2]|unique|list }}",
    "upper": "{{ 'ab'|upper }}",
    "urlencode": "{{ {'a': 'b c'}|urlencode }} {{ 'a/b c'|urlencode }}",
    "urlize": "{{ 'see http://example.org/a-long-path now'|urlize(10, true, '_blank') }}",
    "wordcount": "{{ 'a b c'|wordcount }}",
    "wordwrap": "{{ 'a b c d'|wordwrap(3) }}|{{ 'aaa bbb'|wordwrap(3, wrapstring='<br>') }}",
    "xmlattr": "{{ {'class': 'a', 'id': 1}|xmlattr }}",
    "humanize_abs_timedelta": "{{ delta|humanize_abs_timedelta }}",
    "humanize_activate": "{{ 'de_DE'|humanize_activate is not none }}{{ 1234|humanize_intcomma }}",
    "humanize_apnumber": "{{ 5|humanize_apnumber }}",
    "humanize_clamp": "{{ 0.0001|humanize_clamp(floor=0.01, format='{:.0%}') }}",
    "humanize_date_and_delta": "{{ 'x'|humanize_date_and_delta }}",
    "humanize_deactivate": "{{ 1|humanize_deactivate }}{{ 1234|humanize_intcomma }}",
    "humanize_decimal_separator": "{{ 1|humanize_decimal_separator }}",
    "humanize_fractional": "{{ 0.3|humanize_fractional }}",
    "humanize_intcomma": "{{ 1234567.891|humanize_intcomma(2) }}",
    "humanize_intword": "{{ 1200000|humanize_intword }}",
    "humanize_metric": "{{ 1500|humanize_metric('V') }}",
    "humanize_naturaldate": "{{ day|humanize_naturaldate }}",
    "humanize_naturalday": "{{ day|humanize_naturalday }}",
    "humanize_naturaldelta": "{{ delta|humanize_naturaldelta }}",
    "humanize_naturalsize": "{{ 3000000|humanize_naturalsize(true) }}",
    "humanize_naturaltime": "{{ delta|humanize_naturaltime }}",
    "humanize_ordinal": "{{ 3|humanize_ordinal }}",
    "humanize_precisedelta": "{{ delta|humanize_precisedelta(minimum_unit='minutes') }}",
    "humanize_scientific": "{{ 12345|humanize_scientific(3) }}",
    "humanize_thousands_separator": "{{ 1|humanize_thousands_separator }}",
}
# hooklab's own filter (SPEC 6), which Jinja does not have; tested in test_cloudevents.
HOOKLAB_FILTERS = {"from_cloud_event"}
CONTEXT: dict[str, Any] = {
    "body": {"none": None, "list": [3, 1, 2]},
    "delta": datetime.timedelta(hours=-3, minutes=-5),
    "day": datetime.date(2020, 1, 2),
}


def test_every_filter_has_a_sample() -> None:
    assert set(FILTER_SAMPLES) == set(ENVIRONMENT.filters) - HOOKLAB_FILTERS


def _outcome(render: Any) -> str:
    try:
        return f"rendered: {render()}"
    except Exception as exc:
        return f"error: {' '.join(str(exc).split())}"


@pytest.mark.parametrize("name", sorted(FILTER_SAMPLES))
def test_every_filter_renders_as_jinjas_own(name: str) -> None:
    source = FILTER_SAMPLES[name]
    expected = _outcome(lambda: prefects_environment().from_string(source).render(CONTEXT))
    found = _outcome(lambda: compile_template(source).render(dict(CONTEXT)))
    assert found.startswith("rendered") and found == expected
    # (Jinja leaves humanize's language switched for its thread; hooklab switches it back.)
    from humanize.i18n import deactivate

    deactivate()


def test_a_switched_language_does_not_reach_the_next_render() -> None:
    compile_template("{{ 'de_DE'|humanize_activate }}").render({})
    assert compile_template("{{ 1234|humanize_intcomma }}").render({}) == "1,234"


def test_a_bad_template_in_jinjas_words_and_in_hooklabs() -> None:
    with pytest.raises(TemplateError, match="line 1: TypeError"):
        compile_template("{{ 1|humanize_deactivate(2) }}").render({})


# What a template could make far past the budget, before a check was there: each must be
# refused as over budget (RenderBudgetExceeded), never allocated, never left to run on.
BIG = "{% set s = 'x' * 1000000 %}"
NESTED = (
    "{% set s = 'x' * 1000 %}{% set a = [s, s, s, s, s, s, s, s, s, s] %}"
    "{% set b = [a, a, a, a, a, a, a, a, a, a] %}{% set c = [b, b, b, b, b, b, b, b, b, b] %}"
    "{% set d = [c, c, c, c, c, c, c, c, c, c] %}{% set e = [d, d, d, d, d, d, d, d, d, d] %}"
)
OVER_BUDGET = {
    # filters
    "slice": "{{ range(100)|slice(10000000)|list|length }}",
    "slice far past": "{{ range(100)|slice(1000000000)|list|length }}",
    "batch with a fill": "{{ range(100)|batch(1000000000, 'x')|list|length }}",
    "center": "{{ 'x'|center(1000000000) }}",
    "indent each line": "{{ ('a\\n' * 500000)|indent(1000)|length }}",
    "indent by text": "{{ ('a\\n' * 500000)|indent('x' * 100)|length }}",
    "wordwrap of one long word": "{{ ('y' * 1000000)|wordwrap(1)|length }}",
    "wordwrap's wrapstring": "{{ ('a ' * 700000)|wordwrap(1, wrapstring='x' * 1000)|length }}",
    "format filter widths": "{{ '%1400000s%1400000s'|format(1, 2)|length }}",
    "format filter precision": "{{ '%.1000000000f'|format(1.5)|length }}",
    "replace": "{{ ('a' * 1000000)|replace('a', 'bbbb') }}",
    "join of one value twice": BIG + "{{ [s, s]|join|length }}",
    "tojson indent": "{{ range(100)|list|tojson(indent=1000000)|length }}",
    "tojson of shared values": NESTED + "{{ e|tojson|length }}",
    "string of shared values": NESTED + "{{ e|string|length }}",
    "pprint of shared values": NESTED + "{{ e|pprint|length }}",
    "sum of lists": "{{ ('x' * 100000)|list|batch(1)|list|sum(start=[])|length }}",
    "map to wide values": "{{ (['x'] * 1000)|map('center', 1400000)|list|length }}",
    "humanize precision": "{{ 12345|humanize_scientific(1000000000)|length }}",
    "humanize format": "{{ 1200000|humanize_intword('%.1000000000f')|length }}",
    "humanize digits": "{{ 1.5|humanize_intcomma(1000000000)|length }}",
    "humanize size format": "{{ 3000|humanize_naturalsize(format='%.1000000000f')|length }}",
    "humanize clamp format": "{{ 0.5|humanize_clamp(format='{:1000000000}')|length }}",
    # joins the template writes
    "~ of one value many times": BIG + "{{ (s ~ s ~ s ~ s ~ s ~ s ~ s ~ s ~ s ~ s)|length }}",
    "a macro's text": BIG
    + "{% macro m(x) %}{{ x }}{{ x }}{{ x }}{{ x }}{% endmacro %}{{ m(m(m(s)))|length }}",
    "a set block's text": BIG + "{% set t %}{{ s }}{{ s }}{% endset %}{{ t|length }}",
    "the same value written many times": "{% set a = ['x' * 1400000] %}" + "{{ a }}" * 1000,
    # literals, operators, globals
    "a literal list of one value": BIG + "{% set a = [s, s] %}{{ a|length }}",
    "a literal dict of one value": BIG + "{% set a = {'a': s, 'b': s} %}{{ a|length }}",
    "repeating a list of a long value": BIG + "{{ ([s] * 100)|length }}",
    "% widths": "{{ '%1400000s%1400000s' % (1, 2) }}",
    "% of one value twice": BIG + "{{ '%(a)s%(a)s' % {'a': s} }}",
    "dict() of one value": BIG + "{{ dict(a=s, b=s)|length }}",
    "namespace() of one value": BIG + "{{ namespace(a=s, b=s).a|length }}",
    # methods
    "str.expandtabs": "{{ ('\t' * 1000000).expandtabs(1000000)|length }}",
    "str.join": "{{ ('x' * 1000000).join(['a'] * 1000)|length }}",
    "str.join of a generator": "{{ ('x' * 100000).join(range(100)|map('string'))|length }}",
    "str.translate": "{{ ('a' * 1000000).translate({97: 'x' * 1000})|length }}",
    "str.format nested width": "{{ '{:{w}}'.format('x', w=1000000000)|length }}",
    "str.format widths": "{{ '{:1400000}{:1400000}'.format(1, 2)|length }}",
    "str.format one value twice": BIG + "{{ '{0}{0}'.format(s)|length }}",
    "str.format_map": BIG + "{{ '{a}{a}'.format_map({'a': s})|length }}",
    "bytes.center": "{{ 'x'.encode().center(1000000000)|length }}",
    "bytes.expandtabs": "{{ ('\t' * 1000).encode().expandtabs(10000000)|length }}",
    "bytes.replace": "{{ ('a' * 1000000).encode().replace('a'.encode(), 'bbbb'.encode()) }}",
    "int.to_bytes": "{{ (1).to_bytes(1000000000, 'big')|length }}",
    "dict.fromkeys": BIG + "{{ {}.fromkeys(range(100), s)|length }}",
    # loops that write nothing
    "an empty loop in an empty loop": BIG
    + "{% for a in s %}{% for b in s %}{% endfor %}{% endfor %}",
}

STOPPED_BY_THE_CLOCK = {"an empty loop in an empty loop"}

# Everything else reachable builds a small multiple of what it is given: each is run once on
# the largest value a template can hold, and must finish within the budgets.
_TEXT_ARGS = {
    "count": "('x')",
    "endswith": "('x')",
    "find": "('x')",
    "index": "('x')",
    "join": "(['a', 'b'])",
    "center": "(10)",
    "ljust": "(10)",
    "rjust": "(10)",
    "zfill": "(10)",
    "maketrans": "('x', 'y')",
    "partition": "('x')",
    "removeprefix": "('x')",
    "removesuffix": "('x')",
    "replace": "('x', 'y')",
    "rfind": "('x')",
    "rindex": "('x')",
    "rpartition": "('x')",
    "rsplit": "('x', 3)",
    "split": "('x', 3)",
    "startswith": "('x')",
    "translate": "({120: 'y'})",
    "format_map": "({})",
    "decode": "()",
    "fromhex": "('ab')",
}
_BYTES_ARGS = {
    **_TEXT_ARGS,
    **{
        name: args.replace("'x'", "'x'.encode()").replace("'y'", "'y'.encode()")
        for name, args in _TEXT_ARGS.items()
    },
    "join": "(['a'.encode()])",
    "translate": "(none)",
}
_METHOD_OWNERS = {
    "str": ("body.text", str, _TEXT_ARGS),
    "bytes": ("body.text.encode()", bytes, _BYTES_ARGS),
    "int": ("body.n", int, {"to_bytes": "(2, 'big')", "from_bytes": "('ab'.encode(), 'big')"}),
    "float": ("1.5", float, {"fromhex": "('0x1p3')"}),
    "list": ("body.text[:100000]|list", list, {"count": "('x')", "index": "('x')"}),
    "tuple": ("(1, 2)", tuple, {"count": "(1)", "index": "(1)"}),
    "dict": ("body", dict, {"fromkeys": "(body.text[:100000])", "get": "('text')"}),
}


def _bounded_samples() -> dict[str, str]:
    samples = {}
    for name in ENVIRONMENT.filters:
        samples[f"|{name} on text"] = f"{{{{ body.text|{name}|string|length }}}}"
        samples[f"|{name} on a list"] = f"{{{{ (body.text[:100000]|list)|{name}|string|length }}}}"
    for name in ENVIRONMENT.tests:
        samples[f"is {name}"] = f"{{{{ body.text is {name} }}}}"
    for owner, (value, kind, args) in _METHOD_OWNERS.items():
        for name in dir(kind):
            if not name.startswith("_"):
                call = args.get(name, "()")
                samples[f"{owner}.{name}()"] = f"{{{{ ({value}).{name}{call}|string|length }}}}"
    for name in ENVIRONMENT.globals:
        samples[f"{name}()"] = f"{{{{ {name}()|string|length }}}}"
    return samples


BOUNDED = _bounded_samples()
# What a render that escaped the budgets ends in, in the child: anything but a refusal.
ESCAPED = {"MemoryError", "RecursionError", "started"}


@pytest.fixture(scope="module")
def rendered() -> dict[str, dict[str, Any]]:
    assert not set(OVER_BUDGET) & set(BOUNDED)
    return render_in_child({**OVER_BUDGET, **BOUNDED})


@pytest.mark.parametrize("name", list(OVER_BUDGET))
def test_what_would_build_past_the_budget_is_refused_first(
    rendered: dict[str, dict[str, Any]], name: str
) -> None:
    result = rendered.get(name, {"outcome": "never finished", "child": rendered.get("unfinished")})
    assert result["outcome"] == "RenderBudgetExceeded", result
    assert result["line"] in (1, None) and "\n" not in result["message"]
    if name not in STOPPED_BY_THE_CLOCK:  # measured before it runs, not stopped as it runs
        assert "took longer" not in result["message"], result


@pytest.mark.parametrize("name", list(BOUNDED))
def test_everything_else_stays_within_a_small_multiple_of_its_input(
    rendered: dict[str, dict[str, Any]], name: str
) -> None:
    result = rendered.get(name, {"outcome": "never finished", "child": rendered.get("unfinished")})
    assert result["outcome"] in ("rendered", "TemplateError", "RenderBudgetExceeded"), result
