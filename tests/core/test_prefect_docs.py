"""Every example of Prefect's webhooks page (docs.prefect.io/v3/concepts/webhooks), one test each.

The templates and request shapes are the page's; each goes through a real workspace file.
"""

from __future__ import annotations

import json

import hooklab
from hooklab import HookRequest

STATIC = """{
    "event": "model.refreshed",
    "resource": {
        "prefect.resource.id": "product.models.recommendations",
        "prefect.resource.name": "Recommendations [Products]",
        "producing-team": "Data Science"
    }
}"""

DYNAMIC = """{
    "event": "model.refreshed",
    "resource": {
        "prefect.resource.id": "product.models.{{ body.model }}",
        "prefect.resource.name": "{{ body.friendly_name }}",
        "producing-team": "Data Science"
    }
}"""

# What `curl -d "model=recommendations" -d "friendly_name=Recommendations%20[Products]"` sends.
CURL_FORM = b"model=recommendations&friendly_name=Recommendations%20[Products]"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def resource_of(outcome: hooklab.Outcome) -> dict[str, str]:
    assert outcome.status == 204, outcome.error
    (event,) = outcome.events
    return event.resource.root


def test_static_template_through_a_get_with_no_body(workspace: hooklab.Workspace) -> None:
    hook = workspace.create_webhook("static", STATIC)
    outcome = workspace.receive(hook.slug, HookRequest.fake(method="GET"))
    assert resource_of(outcome) == json.loads(STATIC)["resource"]
    event = outcome.events[0]
    assert event.event == "model.refreshed"
    # Prefect fills in id, occurred and the debugging payload, and relates the webhook.
    assert event.id.version == 7
    assert event.payload == {"method": "GET", "headers": {}, "body": ""}
    assert event.related[-1].root["prefect.resource.id"] == f"prefect-cloud.webhook.{hook.id}"
    assert event.related[-1].role == "webhook"


def test_dynamic_template_through_a_form_post(workspace: hooklab.Workspace) -> None:
    hook = workspace.create_webhook("dynamic", DYNAMIC)
    outcome = workspace.receive(
        hook.slug, HookRequest.fake(method="POST", body=CURL_FORM, headers=FORM)
    )
    assert resource_of(outcome) == {
        "prefect.resource.id": "product.models.recommendations",
        "prefect.resource.name": "Recommendations [Products]",
        "producing-team": "Data Science",
    }


def test_default_filter_uses_the_model_when_the_friendly_name_is_missing(
    workspace: hooklab.Workspace,
) -> None:
    template = DYNAMIC.replace(
        "{{ body.friendly_name }}", "{{ body.friendly_name|default(body.model) }}"
    )
    hook = workspace.create_webhook("defaulted", template)
    without = workspace.receive(hook.slug, HookRequest.fake(method="POST", form={"model": "churn"}))
    assert resource_of(without)["prefect.resource.name"] == "churn"
    with_name = workspace.receive(
        hook.slug, HookRequest.fake(method="POST", body=CURL_FORM, headers=FORM)
    )
    assert resource_of(with_name)["prefect.resource.name"] == "Recommendations [Products]"


def test_item_and_attribute_access_to_form_fields_are_equivalent(
    workspace: hooklab.Workspace,
) -> None:
    template = (
        '{"event": "e", "resource": {"prefect.resource.id": "{{ body[\'friendly_name\'] }}",'
        ' "attr": "{{ body.friendly_name }}"}}'
    )
    hook = workspace.create_webhook("access", template)
    outcome = workspace.receive(
        hook.slug, HookRequest.fake(method="POST", body=CURL_FORM, headers=FORM)
    )
    resource = resource_of(outcome)
    assert resource["prefect.resource.id"] == resource["attr"] == "Recommendations [Products]"


def test_header_access_in_three_letter_cases(workspace: hooklab.Workspace) -> None:
    template = """{"event": "sized", "resource": {
        "prefect.resource.id": "{{ headers['Content-Length'] }}",
        "lower": "{{ headers['content-length'] }}",
        "mixed": "{{ headers['CoNtEnt-LeNgTh'] }}"}}"""
    hook = workspace.create_webhook("headers", template)
    outcome = workspace.receive(hook.slug, HookRequest.fake(method="POST", body=CURL_FORM))
    assert resource_of(outcome) == {
        "prefect.resource.id": str(len(CURL_FORM)),
        "lower": str(len(CURL_FORM)),
        "mixed": str(len(CURL_FORM)),
    }


def test_authorization_is_removed_before_the_template_sees_the_headers(
    workspace: hooklab.Workspace,
) -> None:
    template = """{"event": "auth", "resource": {"prefect.resource.id": "x",
        "seen": "[{{ headers['Authorization'] }}{{ headers.authorization }}]",
        "count": "{{ headers|length }}"}}"""
    hook = workspace.create_webhook("auth", template)
    request = HookRequest.fake(headers={"Authorization": "Bearer pnu_secret", "X-Trace": "t"})
    outcome = workspace.receive(hook.slug, request)
    assert resource_of(outcome)["seen"] == "[]"
    assert resource_of(outcome)["count"] == "1"
    assert "pnu_secret" not in outcome.events[0].model_dump_json()


def test_pass_through_of_a_partial_event(workspace: hooklab.Workspace) -> None:
    hook = workspace.create_webhook("pass-through", "{{ body|tojson }}")
    request = HookRequest.fake(
        method="POST", body=STATIC, headers={"Content-Type": "application/json"}
    )
    assert request.all_headers["Content-Length"] == "228"  # as on the docs page
    outcome = workspace.receive(hook.slug, request)
    assert resource_of(outcome) == json.loads(STATIC)["resource"]
    event = outcome.events[0]
    assert event.event == "model.refreshed"
    assert event.id.version == 7 and event.occurred.tzinfo is not None


def test_text_plain_is_parsed_as_json_first_then_kept_as_text(
    workspace: hooklab.Workspace,
) -> None:
    template = (
        '{"event": "t", "resource": {"prefect.resource.id": "{{ body.model|default(body) }}"}}'
    )
    hook = workspace.create_webhook("text", template)
    plain = {"Content-Type": "text/plain"}
    as_json = HookRequest.fake(method="POST", body='{"model": "m7"}', headers=plain)
    as_text = HookRequest.fake(method="POST", body="just-a-string", headers=plain)
    assert resource_of(workspace.receive(hook.slug, as_json))["prefect.resource.id"] == "m7"
    assert resource_of(workspace.receive(hook.slug, as_text))["prefect.resource.id"] == (
        "just-a-string"
    )


CLOUD_EVENT = {
    "specversion": "1.0",
    "type": "com.example.model.refreshed",
    "source": "/models/recommendations",
    "id": "C-1",
    "time": "2024-04-05T17:31:00Z",
    "datacontenttype": "application/json",
    "data": {"version": 3},
}


def test_cloud_event_in_structured_mode(workspace: hooklab.Workspace) -> None:
    hook = workspace.create_webhook("ce", "{{ body|from_cloud_event(headers) }}")
    request = HookRequest.fake(
        method="POST", json=CLOUD_EVENT, headers={"Content-Type": "application/cloudevents+json"}
    )
    outcome = workspace.receive(hook.slug, request)
    assert resource_of(outcome) == {"prefect.resource.id": "/models/recommendations"}
    event = outcome.events[0]
    assert event.event == "com.example.model.refreshed"
    assert event.payload["data"] == {"version": 3}
    assert event.payload["cloudevents"]["id"] == "C-1"


def test_cloud_event_in_binary_mode(workspace: hooklab.Workspace) -> None:
    hook = workspace.create_webhook("ce", "{{ body|from_cloud_event(headers) }}")
    headers = {
        f"ce-{k}": str(v) for k, v in CLOUD_EVENT.items() if k not in {"data", "datacontenttype"}
    }
    request = HookRequest.fake(
        method="POST", json=CLOUD_EVENT["data"], headers={**headers, "ce-subject": "models/recs"}
    )
    outcome = workspace.receive(hook.slug, request)
    assert resource_of(outcome) == {"prefect.resource.id": "models/recs"}
    assert outcome.events[0].payload["data"] == {"version": 3}
    assert outcome.events[0].payload["cloudevents"]["source"] == "/models/recommendations"


def test_failure_event_for_template_output_that_is_not_an_event(
    workspace: hooklab.Workspace,
) -> None:
    hook = workspace.create_webhook("broken", '{"event": "model.refreshed", "resource": {}}')
    outcome = workspace.receive(hook.slug, HookRequest.fake(method="POST", body=CURL_FORM))
    assert outcome.status == 400
    (failed,) = outcome.events
    assert failed.event == "prefect-cloud.webhook.failed"
    assert failed.payload["method"] == "POST"
    assert failed.payload["body"] == CURL_FORM.decode()
    assert failed.payload["rendered"] == '{"event": "model.refreshed", "resource": {}}'
    assert failed.payload["error"] == (
        "resource: Resources must include the prefect.resource.id label"
    )
    stored = workspace.events()
    assert stored["event"].tolist() == ["prefect-cloud.webhook.failed"]
    assert stored["failed"].tolist() == [True]
