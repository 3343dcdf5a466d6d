"""The pure pipeline: request + webhook + clock + id source -> events or a failure (SPEC 5, 7)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timezone
from uuid import UUID

import pytest

from hooklab.pipeline import FAILED_EVENT, Budgets, Outcome, render_events
from hooklab.request import HookRequest
from hooklab.webhooks import Webhook

MODEL_TEMPLATE = """{
    "event": "model.refreshed",
    "resource": {
        "prefect.resource.id": "product.models.{{ body.model }}",
        "prefect.resource.name": "{{ body.friendly_name }}"
    }
}"""

START = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)


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
    import hooklab.pipeline

    def explode(*args: object, **kwargs: object) -> None:
        raise RuntimeError("disk on fire\nsecond line")

    monkeypatch.setattr(hooklab.pipeline, "validate_event", explode)
    outcome = failed(MODEL_TEMPLATE, form_post())
    assert outcome.error == "RuntimeError: disk on fire second line"
