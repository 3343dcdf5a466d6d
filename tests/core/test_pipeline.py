"""The pure pipeline: request + webhook + clock + id source -> events or a failure (SPEC 5, 7)."""

from __future__ import annotations

import json
import pickle
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any
from uuid import UUID

import pytest

import hooklab.core.pipeline
from hooklab.core.events import ReceivedEvent
from hooklab.core.outcome import FAILED_EVENT, Outcome, Reason
from hooklab.core.pipeline import Budgets, render_events, render_many
from hooklab.core.request import HookRequest, template_context
from hooklab.core.shortcuts import surely_within_limits
from hooklab.core.templates import compile_template
from hooklab.core.webhooks import Webhook

MODEL_TEMPLATE = """{
    "event": "model.refreshed",
    "resource": {
        "prefect.resource.id": "product.models.{{ body.model }}",
        "prefect.resource.name": "{{ body.friendly_name }}"
    }
}"""

START = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)
JSON_TYPE = {"Content-Type": "application/json"}


def hook(template: str = MODEL_TEMPLATE, name: str = "models") -> Webhook:
    return Webhook("8a1b8f4e-0000-4000-8000-000000000001", name, template, "slug", START, START)


def run(
    template: str,
    request: HookRequest,
    clock: Callable[[], datetime],
    new_id: Callable[[], UUID],
    **kwargs: Budgets,
) -> Outcome:
    return render_events(hook(template), request, clock=clock, new_id=new_id, **kwargs)


def form_post() -> HookRequest:
    return HookRequest.fake(method="POST", form={"model": "recs", "friendly_name": "Recs"})


def test_event_defaults_come_from_the_injected_clock_and_id_source(
    clock: Callable[[], datetime], new_id: Callable[[], UUID], start: datetime
) -> None:
    outcome = run(MODEL_TEMPLATE, form_post(), clock, new_id)
    assert outcome.status == 204 and outcome.error is None
    event = outcome.events[0]
    assert event.occurred == start
    assert event.id == UUID(int=1)
    assert event.resource.root == {
        "prefect.resource.id": "product.models.recs",
        "prefect.resource.name": "Recs",
    }


def test_the_same_inputs_give_the_same_event(
    clock: Callable[[], datetime], new_id: Callable[[], UUID]
) -> None:
    request = form_post()
    first = render_events(hook(), request, clock=lambda: START, new_id=lambda: UUID(int=9))
    again = render_events(hook(), request, clock=lambda: START, new_id=lambda: UUID(int=9))
    assert first.events[0].model_dump() == again.events[0].model_dump()


def test_the_webhook_is_appended_to_related(
    clock: Callable[[], datetime], new_id: Callable[[], UUID]
) -> None:
    template = (
        '{"event": "e", "resource": {"prefect.resource.id": "a"}, "related": '
        '[{"prefect.resource.id": "b", "prefect.resource.role": "thing"}]}'
    )
    event = run(template, HookRequest.fake(), clock, new_id).events[0]
    assert [r.root for r in event.related] == [
        {"prefect.resource.id": "b", "prefect.resource.role": "thing"},
        {
            "prefect.resource.id": "prefect-cloud.webhook.8a1b8f4e-0000-4000-8000-000000000001",
            "prefect.resource.role": "webhook",
            "prefect.resource.name": "models",
        },
    ]


def test_default_payload_is_method_headers_and_parsed_body(
    clock: Callable[[], datetime], new_id: Callable[[], UUID]
) -> None:
    request = HookRequest.fake(
        method="POST", json={"a": [1, 2]}, headers={"Authorization": "Bearer k", "X-Id": "7"}
    )
    event = run(MODEL_TEMPLATE, request, clock, new_id).events[0]
    assert event.payload == {
        "method": "POST",
        "headers": {"X-Id": "7", "Content-Type": "application/json", "Content-Length": "11"},
        "body": {"a": [1, 2]},
    }


def test_template_fields_win_over_the_defaults(
    clock: Callable[[], datetime], new_id: Callable[[], UUID]
) -> None:
    template = """{"event": "e", "resource": {"prefect.resource.id": "a"},
        "occurred": "2020-01-01T00:00:00Z", "id": "{{ body.id }}",
        "follows": "00000000-0000-0000-0000-00000000000f", "payload": {"only": "this"}}"""
    own_id = "12345678-1234-5678-1234-567812345678"
    event = run(template, HookRequest.fake(method="POST", json={"id": own_id}), clock, new_id)
    only = event.events[0]
    assert str(only.id) == own_id
    assert only.occurred.year == 2020
    assert only.follows == UUID(int=15)
    assert only.payload == {"only": "this"}


def test_received_is_when_the_request_arrived(
    clock: Callable[[], datetime], new_id: Callable[[], UUID]
) -> None:
    request = HookRequest.fake(received=datetime(2030, 1, 1, tzinfo=START.tzinfo))
    event = run(MODEL_TEMPLATE, request, clock, new_id).events[0]
    assert event.received.year == 2030


def failed(template: str, request: HookRequest, **budgets: Budgets) -> Outcome:
    outcome = render_events(
        hook(template), request, clock=lambda: START, new_id=lambda: UUID(int=3), **budgets
    )
    assert outcome.status == 400
    assert outcome.failed and outcome.error is not None
    assert "\n" not in outcome.error
    (event,) = outcome.events
    assert event.event == FAILED_EVENT
    assert event.payload["error"] == outcome.error
    return outcome


BAD_INPUTS = [
    pytest.param(
        MODEL_TEMPLATE,
        HookRequest.fake(method="POST", body="{oops", headers={"Content-Type": "application/json"}),
        "Invalid JSON body: Expecting property name enclosed in double quotes at line 1 column 2",
        id="malformed-json",
    ),
    pytest.param(
        MODEL_TEMPLATE,
        HookRequest.fake(
            method="POST",
            body=b"model=\xff",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        ),
        "Request body is not valid UTF-8: byte 0xff at position 6",
        id="invalid-utf8",
    ),
    pytest.param(
        "event = {{ body.model }}",
        form_post(),
        "Template output is not valid JSON: Expecting value at line 1 column 1",
        id="not-json",
    ),
    pytest.param(
        '["{{ body.model }}"]',
        form_post(),
        "Template output must be a JSON object, not an array",
        id="not-an-object",
    ),
    pytest.param(
        '"{{ body.model }}"',
        form_post(),
        "Template output must be a JSON object, not a string",
        id="a-string",
    ),
    pytest.param(
        '{"event": "e", "resource": {"prefect.resource.id": "a", "count": {{ body|length }}}}',
        form_post(),
        'resource["count"]: Input should be a valid string, got 2',
        id="number-label",
    ),
    pytest.param(
        '{"event": "e", "resource": {"prefect.resource.name": "{{ body.model }}"}}',
        form_post(),
        "resource: Resources must include the prefect.resource.id label",
        id="missing-resource-id",
    ),
    pytest.param(
        # Small output, but the default payload carries the body: 1.6 MB of UTF-8 in 0.8 M chars.
        '{"event": "e", "resource": {"prefect.resource.id": "a"}}',
        HookRequest.fake(method="POST", json={"blob": "\u00e9" * 800_000}),
        "Refusing to publish event of size 16",
        id="oversize-event",
    ),
    pytest.param(
        '{\n"event": "{{ range(1000)|list }}"\n}',
        form_post(),
        "line 2: OverflowError: Range too big.",
        id="huge-range",
    ),
    pytest.param(
        '{"event": "{{ "x" * 2000000 }}"}',
        form_post(),
        "line 1: A width or length of 2000000 is larger than the output limit",
        id="repetition",
    ),
    pytest.param(
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        form_post(),
        "line 1: Security error: access to attribute '__class__' of 'str' object is unsafe.",
        id="sandbox-escape",
    ),
]


@pytest.mark.parametrize(("template", "request_", "reason"), BAD_INPUTS)
def test_bad_input_becomes_a_failure_event_with_a_one_line_reason(
    template: str, request_: HookRequest, reason: str
) -> None:
    outcome = failed(template, request_)
    assert outcome.error is not None and outcome.error.startswith(reason), outcome.error


def test_failure_event_shape() -> None:
    request = HookRequest.fake(
        method="POST", body="{oops", headers={"Content-Type": "application/json",
                                               "Authorization": "Bearer secret-key"}
    )  # fmt: skip
    outcome = failed(MODEL_TEMPLATE, request)
    event = outcome.events[0]
    assert event.resource.root == {
        "prefect.resource.id": "prefect-cloud.webhook.8a1b8f4e-0000-4000-8000-000000000001",
        "prefect.resource.name": "models",
    }
    assert event.occurred == START and event.id == UUID(int=3)
    assert event.payload == {
        "method": "POST",
        "headers": {"Content-Type": "application/json", "Content-Length": "5"},
        "body": "{oops",
        "rendered": None,
        "error": outcome.error,
    }
    assert "secret-key" not in event.model_dump_json()


def test_failure_keeps_what_the_template_rendered() -> None:
    outcome = failed('{"event": "e", "resource": {"n": {{ body.model|length }}}}', form_post())
    assert outcome.rendered == '{"event": "e", "resource": {"n": 4}}'
    assert outcome.events[0].payload["rendered"] == outcome.rendered


def test_output_budget_from_budgets_fails_the_request() -> None:
    template = (
        '{"event": "e", "resource": {"prefect.resource.id": "'
        '{% for i in range(50) %}xxxxx{% endfor %}"}}'
    )
    outcome = failed(template, form_post(), budgets=Budgets(max_output=100))
    assert outcome.error == "Rendered output is larger than the limit of 100 bytes"
    assert (
        render_events(hook(template), form_post(), budgets=Budgets(max_output=1000)).status == 204
    )


def test_failure_events_dump_as_json_like_real_events() -> None:
    outcome = failed("nope {{ 1 }}", form_post())
    dumped = json.loads(outcome.events[0].model_dump_json())
    assert dumped["event"] == FAILED_EVENT
    assert dumped["related"] == []
    assert dumped["id"] == "00000000-0000-0000-0000-000000000003"


def test_an_unforeseen_exception_still_becomes_a_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    def explode(*args: object, **kwargs: object) -> None:
        raise RuntimeError("disk on fire\nsecond line")

    monkeypatch.setattr(hooklab.core.pipeline, "default_payload", explode)
    outcome = failed(MODEL_TEMPLATE, form_post())
    assert outcome.error == "RuntimeError: disk on fire second line"


# The quick lane (one validation, no serializing to measure the size): the same events as
# validate_event gives, or the same errors.


def both_lanes(
    template: str,
    request: HookRequest,
    monkeypatch: pytest.MonkeyPatch,
    clock: Callable[[], datetime] = lambda: START,
) -> tuple[Outcome, Outcome]:
    """The outcome as the pipeline gives it, and with every event through validate_event."""
    fast = render_events(hook(template), request, clock=clock, new_id=lambda: UUID(int=5))
    with monkeypatch.context() as patched:
        patched.setattr(hooklab.core.pipeline, "surely_within_limits", lambda *args: False)
        slow = render_events(hook(template), request, clock=clock, new_id=lambda: UUID(int=5))
    return fast, slow


def plain(template: str, request: HookRequest) -> bool:
    """True when the pipeline takes the quick lane for this template and request."""
    rendered = compile_template(template).render(template_context(request).as_dict())
    return surely_within_limits(rendered, request)


def field_types(event: ReceivedEvent) -> dict[str, Any]:
    types: dict[str, Any] = {name: type(value) for name, value in event.__dict__.items()}
    types["related"] = [type(item) for item in event.related]
    return types


ROLE = '"prefect.resource.role": "owner"'
PLAIN_EVENTS = [
    pytest.param(MODEL_TEMPLATE, form_post(), id="form"),
    pytest.param(
        '{"event": "{{ body.kind }}", "resource": {"prefect.resource.id": "{{ body.id }}", '
        '"team": "Data Science"}}',
        HookRequest.fake(method="POST", json={"kind": "a.b", "id": "x", "deep": [{"k": None}]}),
        id="json-body-in-default-payload",
    ),
    pytest.param(
        '{"event": "e", "resource": {"prefect.resource.id": "ünï \\"quoted\\" \\\\ \\u00e9"}}',
        form_post(),
        id="escapes-and-unicode",
    ),
    pytest.param(
        '{"event": "e", "resource": {"prefect.resource.id": "a"}, "related": ['
        f'{{"prefect.resource.id": "b", {ROLE}, "extra": "1"}}, '
        f'{{"prefect.resource.id": "c", {ROLE}}}]}}',
        form_post(),
        id="related",
    ),
    pytest.param(
        '{"event": "e", "resource": {"prefect.resource.id": "a"}, "related": []}',
        form_post(),
        id="empty-related",
    ),
    pytest.param(
        '{"event": "e", "resource": {"prefect.resource.id": "a"}, '
        '"payload": {"n": 1.5, "list": [1, {"x": null}], "t": true}}',
        form_post(),
        id="own-payload",
    ),
    pytest.param(
        '{"event": "e", "resource": {"prefect.resource.id": "a"}, "follows": null, "extra": 1}',
        HookRequest.fake(method="GET", query={"q": "1"}),
        id="null-follows-and-unknown-keys",
    ),
]


@pytest.mark.parametrize(("template", "request_"), PLAIN_EVENTS)
def test_a_plain_event_is_built_exactly_as_validation_builds_it(
    template: str, request_: HookRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert plain(template, request_)
    fast, slow = both_lanes(template, request_, monkeypatch)
    assert fast.status == slow.status == 204
    assert fast == slow
    (event,) = fast.events
    (expected,) = slow.events
    assert event.model_dump() == expected.model_dump()
    assert event.model_dump_json() == expected.model_dump_json()
    assert field_types(event) == field_types(expected)
    assert event.model_fields_set == expected.model_fields_set
    assert pickle.loads(pickle.dumps(event)) == expected
    assert event.model_copy(deep=True) == expected


@pytest.mark.parametrize(
    "moment",
    [
        datetime(2024, 5, 1, 14, 0, tzinfo=timezone(timedelta(hours=2))),
        datetime(2024, 5, 1, 12, 0),
    ],
    ids=["other-zone", "naive"],
)
def test_a_clock_outside_utc_gives_the_same_event_in_both_lanes(
    moment: datetime, monkeypatch: pytest.MonkeyPatch
) -> None:
    fast, slow = both_lanes(MODEL_TEMPLATE, form_post(), monkeypatch, clock=lambda: moment)
    assert fast == slow
    assert fast.events[0].occurred == START and fast.events[0].occurred.tzinfo == timezone.utc


def labels(count: int, role: bool = False) -> str:
    pairs = [f'"l{i}": "v"' for i in range(count - 1 - role)]
    pairs += ['"prefect.resource.id": "r"'] + ([ROLE] if role else [])
    return "{" + ", ".join(pairs) + "}"


def event_with(extra: str = "", resource: str = '{"prefect.resource.id": "r"}') -> str:
    return f'{{"event": "e", "resource": {resource}{extra}}}'


NOT_PLAIN = [
    pytest.param(
        event_with(resource='{"prefect.resource.id": "r", "n": {{ body.model|length }}}'),
        form_post(),
        'resource["n"]: Input should be a valid string, got 4',
        id="number-as-label",
    ),
    pytest.param(
        event_with(resource='{"prefect.resource.name": "n"}'),
        form_post(),
        "resource: Resources must include the prefect.resource.id label",
        id="missing-resource-id",
    ),
    pytest.param(
        event_with(resource='{"prefect.resource.id": ""}'),
        form_post(),
        "resource: The prefect.resource.id label must be non-empty",
        id="empty-resource-id",
    ),
    pytest.param(
        event_with(', "related": [{"prefect.resource.id": "o"}]'),
        form_post(),
        "related[0]: Related Resources must include the prefect.resource.role label",
        id="related-without-role",
    ),
    pytest.param(
        event_with(resource=labels(501)),
        form_post(),
        "resource: The maximum number of labels per resource is 500",
        id="too-many-labels",
    ),
    pytest.param(
        event_with(', "related": [' + ", ".join([labels(2, role=True)] * 101) + "]"),
        form_post(),
        "related: The maximum number of related resources is 100",
        id="too-many-related",
    ),
    pytest.param(
        '{"event": "' + "e" * 1025 + '", "resource": {"prefect.resource.id": "r"}}',
        form_post(),
        "event: Event name must be at most 1024 characters",
        id="long-name",
    ),
    pytest.param(
        '{"resource": {"prefect.resource.id": "r"}}',
        form_post(),
        "event: Field required",
        id="missing-name",
    ),
    pytest.param(
        event_with(', "payload": 5'),
        form_post(),
        "payload: Input should be a valid dictionary, got 5",
        id="payload-not-an-object",
    ),
    pytest.param(
        event_with(', "occurred": "yesterday"'),
        form_post(),
        "occurred: Input should be a valid datetime",
        id="own-occurred",
    ),
    pytest.param(
        event_with(', "id": "not-a-uuid"'),
        form_post(),
        "id: Input should be a valid UUID",
        id="own-id",
    ),
    pytest.param(
        event_with(', "follows": 7'),
        form_post(),
        "follows: UUID input should be a string, bytes or UUID object",
        id="own-follows",
    ),
    pytest.param(
        event_with(),
        HookRequest.fake(method="POST", json={"blob": "\u00e9" * 800_000}),
        "Refusing to publish event of size 16",
        id="oversize",
    ),
    pytest.param(
        event_with(),
        HookRequest.fake(method="POST", body='{"a": "\\ud800"}', headers=JSON_TYPE),
        'payload["body"]["a"]: text that is not valid Unicode (a lone surrogate, "\\ud800")',
        id="lone-surrogate-in-body",
    ),
    pytest.param(
        event_with(resource='{"prefect.resource.id": "{{ body.a }}"}'),
        HookRequest.fake(method="POST", body='{"a": "\\udfff"}', headers=JSON_TYPE),
        'resource["prefect.resource.id"]: text that is not valid Unicode (a lone surrogate, '
        '"\\udfff")',
        id="lone-surrogate-rendered",
    ),
    pytest.param(
        event_with(', "payload": {"a": ' + "[" * 300 + "]" * 300 + "}"),
        form_post(),
        "payload: nested 301 levels deep, deeper than the 256 levels an event can hold",
        id="nested-too-deep",
    ),
]


# What may not serialize, or may pass the size limit, is measured: never the quick lane.
MEASURED = {"oversize", "lone-surrogate-in-body", "lone-surrogate-rendered", "nested-too-deep"}


@pytest.mark.parametrize(("template", "request_", "reason"), NOT_PLAIN)
def test_an_invalid_event_fails_with_prefects_error_texts_in_both_lanes(
    template: str, request_: HookRequest, reason: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    fast, slow = both_lanes(template, request_, monkeypatch)
    assert fast == slow
    assert fast.status == 400
    assert fast.error is not None and fast.error.startswith(reason), fast.error


@pytest.mark.parametrize(
    ("template", "request_"),
    [pytest.param(*case.values[:2], id=case.id) for case in NOT_PLAIN if case.id in MEASURED],
)
def test_what_may_not_serialize_or_fit_is_never_the_quick_lane(
    template: str, request_: HookRequest
) -> None:
    assert not plain(template, request_)


def test_own_times_and_ids_are_validated_and_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    template = event_with(
        ', "occurred": "2020-01-01T02:00:00+02:00", '
        '"id": "12345678-1234-5678-1234-567812345678", '
        '"follows": "00000000-0000-0000-0000-00000000000f"'
    )
    assert plain(template, form_post())
    fast, slow = both_lanes(template, form_post(), monkeypatch)
    assert fast == slow and fast.status == 204
    assert fast.events[0].occurred == datetime(2020, 1, 1, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    ("template", "request_", "reason", "line"),
    [
        pytest.param(MODEL_TEMPLATE, HookRequest.fake(headers=JSON_TYPE, body="{oops"),
                     Reason.BAD_BODY, None, id="bad-body"),
        pytest.param('{\n\n"event": "{{ range(1000)|list }}"}', form_post(),
                     Reason.RENDER_ERROR, 3, id="render-error"),
        pytest.param('{"event": {{ body.model }}', form_post(),
                     Reason.INVALID_OUTPUT, None, id="not-json"),
        pytest.param('{"event": "e"}', form_post(), Reason.INVALID_EVENT, None,
                     id="invalid-event"),
    ],
)  # fmt: skip
def test_a_failure_says_its_reason_and_template_line(
    template: str, request_: HookRequest, reason: Reason, line: int | None
) -> None:
    outcome = failed(template, request_)
    assert (outcome.reason, outcome.line, outcome.status) == (reason, line, 400)


def test_a_produced_event_has_no_reason() -> None:
    outcome = render_events(hook(), form_post())
    assert (outcome.status, outcome.reason, outcome.line) == (204, None, None)


def test_a_list_is_a_batch_only_for_a_template_that_uses_from_cloud_event() -> None:
    mentions = '[{"event": "from_cloud_event", "resource": {"prefect.resource.id": "a"}}]'
    outcome = failed(mentions, form_post())
    assert outcome.error == "Template output must be a JSON object, not an array"


def test_render_many_compiles_once_and_answers_each_request_in_order() -> None:
    requests = [form_post(), HookRequest.fake(headers=JSON_TYPE, body="{"), form_post()]
    outcomes = list(render_many(hook(), requests, clock=lambda: START, new_id=lambda: UUID(int=1)))
    assert [o.status for o in outcomes] == [204, 400, 204]
    assert [o.request for o in outcomes] == requests
    assert outcomes[0] == render_events(hook(), requests[0], clock=lambda: START,
                                        new_id=lambda: UUID(int=1))  # fmt: skip


def test_a_rendered_number_python_cannot_read_fails_in_the_users_words() -> None:
    template = '{"event": "e", "resource": {"prefect.resource.id": "x"}, "n": ' + "7" * 5000 + "}"
    outcome = failed(template, form_post())
    assert outcome.error == (
        "Template output is not valid JSON: a number has more than 4300 digits, more than can "
        "be read"
    )
