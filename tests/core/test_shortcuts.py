"""Every shortcut of the pipeline against the slow path, on generated templates and requests.

The slow path is what a reader of Prefect's docs would write: the request parsed with the
standard library, the template rendered by a plain sandboxed Jinja environment, json.loads,
the defaults filled in and `validate_event`. The pipeline must give the same text, the same
events field for field, and the same error texts, whichever of its shortcuts it takes:
the dict lookups, `tojson` and the joined chunks of the render, the one-pass form parser,
the one validation of an event surely within the size limit, and a replay's plain events.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode
from uuid import UUID

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jinja2 import ChainableUndefined
from jinja2.sandbox import ImmutableSandboxedEnvironment

from hooklab.core.culprit import parser_words
from hooklab.core.events import EventError, validate_event
from hooklab.core.outcome import Outcome, Reason
from hooklab.core.pipeline import Pipeline, PlainEvent, default_payload
from hooklab.core.request import (
    HookRequest,
    TemplateContext,
    parse_form,
    template_context,
)
from hooklab.core.shortcuts import json_loads
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
    context = reference_context(request)
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
    try:
        expected: object = ("value", repr(json.loads(text)))
    except json.JSONDecodeError as exc:
        expected = ("error", str(exc))
    try:
        found: object = ("value", repr(json_loads(text)))
    except json.JSONDecodeError as exc:
        found = ("error", str(exc))
    assert found == expected
