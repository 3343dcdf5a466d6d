"""Real GitHub deliveries (tests/corpus/github, 60 event types) through GitHub-shaped templates.

Each delivery goes in twice, as GitHub can send it: as application/json, and form-encoded as a
single `payload=<json>` field.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from corpus_support import github_deliveries

import hooklab
from hooklab import HookRequest

# The event name from the header, the action when the payload has one; the resource is the
# repository, else the organization, else the sender, else the event type itself.
JSON_TEMPLATE = """{
  "event": "github.{{ headers['X-GitHub-Event'] }}{{ ('.' ~ body.action) if body.action }}",
  "resource": {
    {% if body.repository %}
    "prefect.resource.id": {{ ("github.repository." ~ body.repository.full_name)|tojson }},
    "prefect.resource.name": {{ body.repository.name|tojson }},
    {% elif body.organization %}
    "prefect.resource.id": {{ ("github.organization." ~ body.organization.login)|tojson }},
    {% elif body.sender %}
    "prefect.resource.id": {{ ("github.user." ~ body.sender.login)|tojson }},
    {% else %}
    "prefect.resource.id": "github.{{ headers['x-github-event'] }}",
    {% endif %}
    "github.delivery": "{{ headers['X-GitHub-Delivery'] }}"
  },
  "payload": {"sender": {{ body.sender.login|default(none)|tojson }}}
}"""

# Prefect has no filter that parses JSON text, so with a form delivery `body.payload` is the
# JSON text itself. What a faithful template can do is embed that text as the payload.
FORM_TEMPLATE = """{
  "event": "github.{{ headers['X-GitHub-Event'] }}",
  "resource": {"prefect.resource.id": "github.delivery.{{ headers['X-GitHub-Delivery'] }}"},
  "payload": {"github": {{ body.payload }}, "fields": {{ (body.repository or "")|tojson }}}
}"""


def deliveries() -> list[Any]:
    return [pytest.param(path, id=path.parent.name) for path in github_deliveries()]


def headers_for(path: Path) -> dict[str, str]:
    return {
        "X-GitHub-Event": path.parent.name,
        "X-GitHub-Delivery": "72d3162e-cc78-11e3-81ab-4c9367dc0958",
        "User-Agent": "GitHub-Hookshot/044aadd",
    }


def expected_resource_id(payload: dict[str, Any], event_type: str) -> str:
    if payload.get("repository"):
        return f"github.repository.{payload['repository']['full_name']}"
    if payload.get("organization"):
        return f"github.organization.{payload['organization']['login']}"
    if payload.get("sender"):
        return f"github.user.{payload['sender']['login']}"
    return f"github.{event_type}"


def test_the_corpus_has_sixty_event_types() -> None:
    assert len({path.parent.name for path in github_deliveries()}) == 60


@pytest.mark.parametrize("path", deliveries())
def test_json_delivery_becomes_an_event_from_its_fields(
    workspace: hooklab.Workspace, path: Path
) -> None:
    payload = json.loads(path.read_text())
    event_type = path.parent.name
    hook = workspace.create_webhook("github", JSON_TEMPLATE)
    request = HookRequest.fake(method="POST", json=payload, headers=headers_for(path))
    outcome = workspace.receive(hook.slug, request)
    assert outcome.status == 204, outcome.error
    (event,) = outcome.events
    action = payload.get("action")
    assert event.event == f"github.{event_type}" + (f".{action}" if action else "")
    assert event.resource.id == expected_resource_id(payload, event_type)
    assert event.resource.root["github.delivery"] == "72d3162e-cc78-11e3-81ab-4c9367dc0958"
    if payload.get("repository"):
        assert event.resource.name == payload["repository"]["name"]
    assert event.payload == {"sender": (payload.get("sender") or {}).get("login")}
    stored = workspace.events()
    assert stored["event"].tolist() == [event.event]
    assert stored["related.webhook"].tolist() == [f"prefect-cloud.webhook.{hook.id}"]


@pytest.mark.parametrize("path", deliveries())
def test_form_delivery_keeps_the_json_text_whole_as_prefect_would(
    workspace: hooklab.Workspace, path: Path
) -> None:
    text = path.read_text()
    hook = workspace.create_webhook("github-form", FORM_TEMPLATE)
    request = HookRequest.fake(
        method="POST",
        body=urlencode({"payload": text}),
        headers={**headers_for(path), "Content-Type": "application/x-www-form-urlencoded"},
    )
    outcome = workspace.receive(hook.slug, request)
    assert outcome.status == 204, outcome.error
    (event,) = outcome.events
    assert event.event == f"github.{path.parent.name}"
    # The delivery arrives intact, and none of its fields are reachable from the template.
    assert event.payload == {"github": json.loads(text), "fields": ""}
    # Captured raw: a replay of the stored request gives the same payload.
    (stored,) = workspace.captured()
    assert stored.request.body == request.body


@pytest.mark.parametrize("path", deliveries())
def test_the_json_template_on_a_form_delivery_sees_no_fields(
    workspace: hooklab.Workspace, path: Path
) -> None:
    hook = workspace.create_webhook("github", JSON_TEMPLATE)
    request = HookRequest.fake(
        method="POST", form={"payload": path.read_text()}, headers=headers_for(path)
    )
    outcome = workspace.receive(hook.slug, request)
    assert outcome.status == 204, outcome.error
    event = outcome.events[0]
    assert event.event == f"github.{path.parent.name}"  # no action: body.action is undefined
    assert event.resource.id == f"github.{path.parent.name}"
