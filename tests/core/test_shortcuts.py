"""Every shortcut of the pipeline against the slow path, on generated templates and requests.

The slow path is what a reader of Prefect's docs would write: the request parsed with the
standard library, the template rendered by a plain sandboxed Jinja environment, json.loads,
the defaults filled in and `validate_event`. The pipeline must give the same text, the same
events field for field, and the same error texts, whichever of its shortcuts it takes:
the dict lookups, `tojson` and the joined chunks of the render, the one-pass form parser,
JSON bodies read by orjson, the one validation of an event surely within the size limit, and a
replay's plain events. tests/core/test_corpus_shortcuts.py does the same on real deliveries.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode
from uuid import UUID

import pytest
from corpus_support import CORPUS, github_deliveries
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jinja2 import ChainableUndefined
from jinja2.sandbox import ImmutableSandboxedEnvironment

from hooklab.core.culprit import parser_words
from hooklab.core.events import EventError, validate_event
from hooklab.core.outcome import Outcome, Reason
from hooklab.core.pipeline import Pipeline, PlainEvent, default_payload
from hooklab.core.request import (
    BodyError,
    HookRequest,
    TemplateContext,
    parse_body,
    parse_form,
    template_context,
)
from hooklab.core.shortcuts import json_body, json_loads, json_text
from hooklab.core.templates import TemplateError, compile_template
from hooklab.core.webhooks import Webhook
from hooklab.history.replay import ReplayResult, replay

START = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)
HOOK_ID = "8a1b8f4e-0000-4000-8000-000000000009"
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))


def reference_environment() -> ImmutableSandboxedEnvironment:
    """Prefect's environment for user templates, from Jinja alone, with hooklab's documented
    `tojson` policy (sorted keys, the headers mapping written as an object)."""
    env = ImmutableSandboxedEnvironment(
        undefined=ChainableUndefined, extensions=["jinja2_humanize_extension.HumanizeExtension"]
    )
    env.policies["json.dumps_kwargs"] = {"sort_keys": True, "default": mapping_as_object}
    return env


def mapping_as_object(value: Any) -> Any:
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


REFERENCE = reference_environment()

# Generated request values: the characters that break naive JSON, HTML and form handling.
TRICKY = st.sampled_from(
    ["", " ", "a", "Ab C", '"', "\\", "<b>", "&", "'", "%", "+", "=", "é", "\u2603", "x y ", "0",
     "42", "-3.5", "1e3", "null", "true", "\n", "\t", "PRO", "  Ada Lovelace  "]
)  # fmt: skip
TEXT = st.lists(TRICKY, max_size=4).map("".join)
KEYS = st.sampled_from(["model", "name", "plan", "n", "friendly_name", "a b", "x-y"])
SCALAR = st.one_of(
    TEXT, st.integers(-(10**6), 10**6), st.floats(allow_nan=False), st.booleans(), st.none()
)
JSON_VALUE = st.recursive(
    SCALAR,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(KEYS, inner, max_size=3)),
    max_leaves=8,
)


@st.composite
def requests(draw: st.DrawFn) -> HookRequest:
    """A form post (its values percent-escaped or not), a JSON post or a bodiless GET."""
    headers = {"User-Agent": "curl/8.5.0"}
    if draw(st.booleans()):
        headers["X-GitHub-Event"] = draw(TEXT)
    kind = draw(st.sampled_from(["form", "escaped-form", "json", "get"]))
    if kind == "json":
        return HookRequest.fake(
            method="POST", headers=headers, json=draw(st.dictionaries(KEYS, JSON_VALUE))
        )
    if kind == "get":
        return HookRequest.fake(method="GET", headers=headers, query={"q": draw(TEXT)})
    fields = draw(st.dictionaries(KEYS, TEXT, max_size=4))
    if kind == "form":
        return HookRequest.fake(method="POST", headers=headers, form=fields)
    body = "&".join(f"{quote(k)}={quote(v, safe='')}" for k, v in fields.items())
    headers["Content-Type"] = "application/x-www-form-urlencoded"
    return HookRequest.fake(method="POST", headers=headers, body=body)


LOOKUPS = st.sampled_from(
    ["body.model", "body.name", "body['a b']", "body['x-y']", "body.n", "body.missing",
     "body.model.deeper", "body.plan", "body.friendly_name", "method", "query.q",
     "headers['X-GitHub-Event']", "headers['user-agent']", "headers", "body"]
)  # fmt: skip
FILTERS = st.sampled_from(
    ["default('?')", "default(body.model)", "lower", "upper", "trim", "replace(' ', '-')",
     "truncate(9)", "int", "float", "string", "length", "join(',')", "humanize_intcomma",
     "tojson", "first", "default('n', true)"]
)  # fmt: skip


@st.composite
def expressions(draw: st.DrawFn) -> str:
    lookup = draw(LOOKUPS)
    chain = draw(st.lists(FILTERS, max_size=4))
    return "|".join([lookup, *chain])


@st.composite
def parts(draw: st.DrawFn) -> str:
    """A piece of template text: literal text, `{{ expression }}`, or an `if` block."""
    kind = draw(st.sampled_from(["text", "expr", "expr", "if"]))
    if kind == "text":
        return draw(st.sampled_from(["", "m.", "-", " x "]))
    if kind == "expr":
        return "{{ " + draw(expressions()) + " }}"
    test = draw(
        st.sampled_from(
            ["body.model", "body.n is number and body.n > 3", "method == 'POST'", "body.none",
             "body.plan|default('')|lower == 'pro'"]
        )
    )  # fmt: skip
    return (
        "{% if " + test + " %}" + "{{ " + draw(expressions()) + " }}"
        "{% else %}" + draw(st.sampled_from(["none", "{{ method }}"])) + "{% endif %}"
    )


@st.composite
def templates(draw: st.DrawFn) -> str:
    """A JSON event skeleton filled with generated parts; some render valid events, some
    render invalid JSON or invalid events, as templates in progress do."""
    text = st.lists(parts(), min_size=1, max_size=3).map("".join)
    labels = [f'"prefect.resource.id": "r.{draw(text)}"']
    if draw(st.booleans()):
        labels.append(f'"prefect.resource.name": "{draw(text)}"')
    if draw(st.integers(0, 4)) == 0:  # a label that may not be a string: an invalid event
        labels.append('"count": {{ ' + draw(expressions()) + "|default(none)|tojson }}")
    event = [f'"event": "{draw(text)}"', '"resource": {' + ", ".join(labels) + "}"]
    if draw(st.booleans()):
        event.append(
            '"related": [{"prefect.resource.id": "o.' + draw(text) + '", '
            '"prefect.resource.role": "owner"}]'
        )
    if draw(st.booleans()):
        event.append('"payload": {"v": {{ ' + draw(expressions()) + "|default(none)|tojson }}}")
    if draw(st.booleans()):
        event.append('"n": [{% for x in body.model %}{{ loop.index }},{% endfor %}0]')
    return "{" + ", ".join(event) + "}"


def hook(template: str) -> Webhook:
    return Webhook(HOOK_ID, "generated", template, "slug", START, START)


def reference_context(request: HookRequest) -> TemplateContext:
    """The template context with the form body parsed by the standard library."""
    context = template_context(request)
    if request.content_type == "application/x-www-form-urlencoded":
        body = dict(parse_qsl(request.body.decode(), keep_blank_values=True))
        return context._replace(body=body)
    return context


def slow_path(template: str, request: HookRequest) -> tuple[int, Any]:
    """(204, the event as a dict) or (400, the error text): Prefect's way, step by step."""
    try:
        context = reference_context(request)
    except BodyError as exc:
        return 400, str(exc)
    try:
        rendered = REFERENCE.from_string(template).render(context.as_dict())
    except Exception:
        return 400, "render error"
    try:
        value = json.loads(rendered)
    except json.JSONDecodeError as exc:
        reason = exc.msg.removesuffix(" at")  # "Invalid control character at" reads once
        return 400, (
            f"Template output is not valid JSON: {reason} at line {exc.lineno} column "
            f"{exc.colno} (char {exc.pos})"
        )
    if not isinstance(value, dict):
        return 400, "not an object"
    value.setdefault("occurred", START)
    value.setdefault("id", UUID(int=7))
    value.setdefault("payload", default_payload(context.as_dict()))
    try:
        event = validate_event(value)
    except EventError as exc:
        return 400, str(exc)
    fields = event.model_dump()
    fields["related"].append(hook(template).related_resource())
    fields["received"] = request.received
    return 204, fields


def fast_path(template: str, request: HookRequest) -> tuple[int, Any]:
    pipeline = Pipeline(hook(template), clock=lambda: START, new_id=lambda: UUID(int=7))
    outcome = pipeline.render(request)
    if outcome.reason is Reason.RENDER_ERROR:
        return outcome.status, "render error"
    if outcome.error and outcome.error.startswith("Template output must be a JSON object"):
        return outcome.status, "not an object"
    if outcome.failed:
        return outcome.status, parser_words(outcome.error or "")
    (event,) = outcome.events
    return outcome.status, event.model_dump()


@SETTINGS
@given(template=templates(), request=requests())
def test_the_render_is_the_plain_sandboxed_render(template: str, request: HookRequest) -> None:
    context = template_context(request).as_dict()
    try:
        expected: str | None = REFERENCE.from_string(template).render(context)
    except Exception:
        expected = None
    try:
        got: str | None = compile_template(template).render(context)
    except TemplateError:
        got = None
    assert got == expected


@SETTINGS
@given(template=templates(), request=requests())
def test_the_pipeline_gives_the_slow_paths_event_or_error(
    template: str, request: HookRequest
) -> None:
    assert fast_path(template, request) == slow_path(template, request)


@SETTINGS
@given(template=templates(), batch=st.lists(requests(), min_size=1, max_size=4))
def test_a_replays_plain_events_are_the_pipelines_events(
    template: str, batch: list[HookRequest]
) -> None:
    def seeded() -> dict[str, Any]:
        ticks = iter(range(1000))
        return {
            "clock": lambda: START + timedelta(seconds=next(ticks)),
            "new_id": lambda: UUID(int=next(ticks) + 1),
        }

    replayed = replay(batch, hook(template), **seeded())
    pipeline = Pipeline(hook(template), **seeded())
    outcomes: list[Outcome | PlainEvent] = [pipeline.render(request) for request in batch]
    assert replayed.outcomes == outcomes
    assert replayed.frame.equals(ReplayResult(outcomes, {HOOK_ID: "generated"}).frame)


FORM_PIECES = st.sampled_from(
    ["a", "b", "=", "&", "+", "%", "%2", "%25", "%26", "%3D", "%3d", "%20", "%C3", "%A9",
     "%c3%a9", "é", "%E2%82", "%FF", " ", "%41", "%2B", "%zz", "\u2603", ";", "\\", "\\x",
     "\\n", "\\u00", "%5C", "%5Cx41", "%0"]
)  # fmt: skip


@settings(max_examples=500, deadline=None)
@given(text=st.one_of(st.lists(FORM_PIECES, max_size=16).map("".join), st.text(max_size=30)))
def test_form_bodies_parse_exactly_as_parse_qsl(text: str) -> None:
    assert parse_form(text) == dict(parse_qsl(text, keep_blank_values=True))


@settings(max_examples=200, deadline=None)
@given(fields=st.dictionaries(TEXT, TEXT, max_size=5))
def test_encoded_forms_come_back_whole(fields: dict[str, str]) -> None:
    assert parse_form(urlencode(fields)) == fields


def test_errors_of_output_and_events_read_as_the_slow_paths() -> None:
    request = HookRequest.fake(method="POST", form={"model": "m"})
    assert fast_path('{"event": {{ body.model }}}', request) == slow_path(
        '{"event": {{ body.model }}}', request
    )
    missing_id = '{"event": "e", "resource": {"x": "{{ body.model }}"}}'
    status, error = fast_path(missing_id, request)
    assert (status, error) == slow_path(missing_id, request)
    assert error == "resource: Resources must include the prefect.resource.id label"


JSON_PIECES = st.sampled_from(
    ['{', '}', '[', ']', '"a"', ":", ",", " ", "\n", "\t", "1", "-2.5e3", "null", "true", "NaN",
     '"\\u00e9"', '"\\ud800"', "\ufeff", "x", '"', "\\"]
)  # fmt: skip


@settings(max_examples=500, deadline=None)
@given(text=st.one_of(st.lists(JSON_PIECES, max_size=14).map("".join), st.from_regex(r"\s*\{.*")))
def test_rendered_output_parses_exactly_as_json_loads(text: str) -> None:
    assert parsed(json_loads, text) == parsed(json.loads, text)
    assert parsed(json_text, text) == parsed(json.loads, text)


def parsed(loads: Any, text: str) -> tuple[str, str]:
    """A text's value (as its repr, so that 1 and 1.0 differ) or its error."""
    try:
        return "value", repr(loads(text))
    except json.JSONDecodeError as exc:
        return "error", str(exc)
    except RecursionError:
        return "error", "nested too deeply"


# What orjson and json.loads read differently, or one of them not at all: numbers past 64 bits
# and past a float's range, NaN, lone surrogates (escaped, or as bytes), bytes that are not
# UTF-8, a byte order mark; and the pieces of ordinary JSON around them.
BODY_PIECES = st.sampled_from(
    [b"{", b"}", b"[", b"]", b'"a"', b":", b",", b" ", b"\n", b"1", b"-0", b"0.1", b"-0.0",
     b"5e-324", b"1e400", b"-1e400", b"NaN", b"Infinity", b"-Infinity", b"12345678901234567890",
     b"-9223372036854775809", b"18446744073709551615", b"9223372036854775807",
     b"1234567890123456789012345", b'"\\ud800"', b'"\\ud83d\\ude00"', b'"\\u0000"',
     "\u00e9".encode(), b"\xef\xbb\xbf", b"\xff", b"\xc0\xaf", b"\xed\xa0\x80", b"true", b"null",
     b'"12345678901234567890"', b"\t", b"\x0c", b"\x00"]
)  # fmt: skip
NUMBERS = st.from_regex(rb"\A-?(0|[1-9][0-9]{0,24})(\.[0-9]{1,24})?([eE][-+]?[0-9]{1,3})?\Z")
DEEP_VALUES = st.recursive(
    st.one_of(SCALAR, st.floats(), st.integers()),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(TEXT, inner, max_size=4)),
    max_leaves=30,
)


def read_body(body: bytes, **quick: Any) -> tuple[str, str]:
    """What a JSON body gives a template: its value (as its repr, so that 1 and 1.0, or 0
    and -0.0, differ) or the error text the request fails with."""
    try:
        return "value", repr(parse_body("application/json", body, **quick))
    except BodyError as exc:
        return "error", str(exc)


@settings(max_examples=1500, deadline=None)
@given(
    body=st.one_of(
        st.lists(BODY_PIECES, max_size=12).map(b"".join),
        st.lists(NUMBERS, min_size=1, max_size=3).map(lambda n: b"[" + b",".join(n) + b"]"),
        DEEP_VALUES.map(lambda v: json.dumps(v, ensure_ascii=False).encode("utf-8", "replace")),
        DEEP_VALUES.map(lambda v: json.dumps(v).encode()),
    )
)
def test_json_bodies_read_as_json_loads_reads_them(body: bytes) -> None:
    assert read_body(body, quick_json=json_body) == read_body(body)
    text = body.decode("utf-8", "surrogateescape")  # (lone surrogates where it is not UTF-8)
    assert parsed(json_text, text) == parsed(json.loads, text)


@pytest.mark.parametrize("extra", [-1, 0, 1])
@pytest.mark.parametrize("depth", ["quarter", "limit"])
def test_bodies_nested_near_json_loads_own_limit_read_alike(depth: str, extra: int) -> None:
    """orjson reads 1,024 levels, json.loads fewer: nested bodies near either limit."""
    limit = sys.getrecursionlimit()
    levels = (limit // 4 if depth == "quarter" else limit) + extra
    for body in (b"[" * levels + b"]" * levels, b'{"a":' * levels + b"1" + b"}" * levels):
        assert read_body(body, quick_json=json_body) == read_body(body)
        assert parsed(json_text, body.decode()) == parsed(json.loads, body.decode())


def python_lines_run(function: Any, *args: Any) -> int:
    """How many lines of Python `function(*args)` runs: its work outside C, counted, not timed."""
    lines = 0

    def trace(frame: Any, event: str, arg: Any) -> Any:
        nonlocal lines
        lines += event == "line"
        return trace

    earlier = sys.gettrace()
    sys.settrace(trace)
    try:
        function(*args)
    except ValueError:
        pass
    finally:
        sys.settrace(earlier)
    return lines


# Bodies a hostile sender may shape to make the reading of long digit runs work in Python:
# one long run in a string, many short ones, and runs each after a stretch of whitespace.
DIGIT_RUN_BODIES = {
    "one long run": lambda size: b'{"a": "' + b"0" * size + b'"}',
    "many runs": lambda size: b'{"a": "' + b"1234567890123456789x" * (size // 20) + b'"}',
    "runs after whitespace": lambda size: (
        b'{"a": "' + (b" " * 100 + b"1234567890123456789x") * (size // 120) + b'"}'
    ),
}


@pytest.mark.parametrize("shape", sorted(DIGIT_RUN_BODIES))
def test_the_python_work_of_reading_a_json_body_does_not_grow_with_it(shape: str) -> None:
    """The test for long integers that keeps a body from orjson does a bounded amount of work
    in Python whatever the body: a body near the size limit costs no more than a small one."""
    small, large = (DIGIT_RUN_BODIES[shape](size) for size in (20_000, 1_400_000))
    assert python_lines_run(json_body, large) == python_lines_run(json_body, small)
    for body in (small, large):
        assert read_body(body, quick_json=json_body) == read_body(body)


# Templates as users write them for real senders, each run on every delivery of the corpus
# (a lookup that finds nothing is undefined, as in Prefect): the same events or the same errors.
SENDER_TEMPLATES = [
    """{"event":
   "github.{{ headers['X-GitHub-Event'] }}{% if body.action %}.{{ body.action }}{% endif %}",
 "resource": {"prefect.resource.id": "github.repository.{{ body.repository.id }}",
              "prefect.resource.name": {{ body.repository.full_name|default('?')|tojson }},
              "github.sender": {{ body.sender.login|default('unknown')|tojson }},
              "github.commits": "{{ body.commits|default([])|length }}"},
 "payload": {"sender": {{ body.sender|tojson }}, "after": {{ body.after|default(none)|tojson }},
             "message": {{ body.head_commit.message|default('', true)|truncate(72)|tojson }},
             "repository": {{ body.repository|default({})|tojson }}}}""",
    # No payload: the event's is the default one, with the whole body.
    """{"event": "{{ body.type|default('delivery') }}",
 "resource": {"prefect.resource.id": "sender.{{ body.id|default(body.event_id) }}"}}""",
    """{"event": "stripe.{{ body.type }}",
 "resource": {"prefect.resource.id":
                "stripe.{{ body.data.object.object }}.{{ body.data.object.id }}",
              "stripe.currency": "{{ body.data.object.currency|default('')|upper }}"},
 "payload": {"amount": {{ body.data.object.amount|default(none)|tojson }},
             "metadata": {{ body.data.object.metadata|default({})|tojson }}}
 {% if body.data.object.customer %}, "related": [{"prefect.resource.id":
   "stripe.customer.{{ body.data.object.customer }}", "prefect.resource.role": "customer"}]
 {% endif %}}""",
    """{"event": "slack.{{ body.event.type }}",
 "resource": {"prefect.resource.id":
                "slack.channel.{{ body.team_id }}.{{ body.event.channel }}"},
 "payload": {"text": {{ body.event.text|default('')|truncate(200)|tojson }},
             "files": {{ body.event.files|default([])|length }}}}""",
]  # fmt: skip


def corpus_requests() -> list[HookRequest]:
    """Every delivery of the corpus as its sender posts it, and broken or unusual copies of
    each: cut short, with a byte that is not UTF-8, inside NaN or an integer past 64 bits."""
    deliveries = [(path, {"X-GitHub-Event": path.parent.name}) for path in github_deliveries()]
    deliveries += [(path, {}) for path in sorted((CORPUS / "stripe").glob("*/*.json"))]
    deliveries += [(path, {}) for path in sorted((CORPUS / "slack").glob("*/*.json"))]
    found = []
    for path, headers in deliveries:
        body = path.read_bytes()
        headers = {"Content-Type": "application/json", **headers}
        for variant in (
            body,
            body[: len(body) // 2],
            body.replace(b'"', b'"\xff', 1),
            b"[" + body + b", NaN]",
            b'{"big": 123456789012345678901234567890, "d": ' + body + b"}",
        ):
            found.append(HookRequest.fake(method="POST", headers=headers, body=variant))
    return found


def test_the_corpus_gives_the_slow_paths_events_and_errors() -> None:
    requests = corpus_requests()
    assert len(requests) > 300
    outcomes = []
    for template in SENDER_TEMPLATES:
        for request in requests:
            found = fast_path(template, request)
            assert found == slow_path(template, request), (template[:40], request.body[:60])
            outcomes.append(found[0])
    assert outcomes.count(204) > 250 and outcomes.count(400) > 250  # both kinds were compared


def test_a_body_past_the_size_limit_fails_only_where_the_event_holds_it() -> None:
    big = HookRequest.fake(method="POST", json={"items": ["x" * 1000] * 1600})
    own = '{"event": "e", "resource": {"prefect.resource.id": "r"}, "payload": {"n": 1}}'
    whole = '{"event": "e", "resource": {"prefect.resource.id": "r"}}'
    assert fast_path(own, big)[0] == 204
    assert fast_path(own, big) == slow_path(own, big)
    assert fast_path(whole, big)[0] == 400
    assert fast_path(whole, big) == slow_path(whole, big)


def test_a_replay_refuses_the_oversize_event_the_receiver_refuses() -> None:
    """A replay fills in the default payload (the whole body) before it looks for a plain
    event: the event is still measured, and fails as the receiver's does."""
    big = HookRequest.fake(method="POST", json={"items": ["x" * 1000] * 1600})
    whole = '{"event": "e", "resource": {"prefect.resource.id": "r"}}'
    received = Pipeline(hook(whole)).render(big)
    assert received.status == 400 and "Refusing to publish event of size" in str(received.error)
    (replayed,) = replay([big], hook(whole)).outcomes
    assert (replayed.status, replayed.error) == (received.status, received.error)
