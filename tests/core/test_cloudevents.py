"""`{{ body|from_cloud_event(headers) }}` in structured, binary and batch mode (SPEC 6)."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any
from uuid import UUID

import pytest

from hooklab.core.outcome import Outcome
from hooklab.core.pipeline import render_events
from hooklab.core.request import HookRequest
from hooklab.core.webhooks import Webhook

TEMPLATE = "{{ body|from_cloud_event(headers) }}"
STRUCTURED = "application/cloudevents+json"

START = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)


def cloud_event(**changes: Any) -> dict[str, Any]:
    base = {
        "specversion": "1.0",
        "type": "com.example.object.created",
        "source": "/storage/bucket-a",
        "subject": "objects/report.csv",
        "id": "A234-1234-1234",
        "time": "2024-04-05T17:31:00Z",
        "comexampleextension": "value",
        "datacontenttype": "application/json",
        "data": {"size": 1024, "owner": "ana"},
    }
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


def receive(request: HookRequest) -> Outcome:
    hook = Webhook("hook-1", "ce", TEMPLATE, "slug", START, START)
    return render_events(hook, request, clock=lambda: START, new_id=lambda: UUID(int=1))


def structured(body: Any, content_type: str = STRUCTURED) -> HookRequest:
    return HookRequest.fake(method="POST", json=body, headers={"Content-Type": content_type})


def test_structured_mode_maps_type_subject_time_data_and_attributes() -> None:
    outcome = receive(structured(cloud_event()))
    assert outcome.status == 204, outcome.error
    event = outcome.events[0]
    assert event.event == "com.example.object.created"
    assert event.resource.id == "objects/report.csv"
    assert event.occurred == datetime(2024, 4, 5, 17, 31, tzinfo=timezone.utc)
    assert event.payload["data"] == {"size": 1024, "owner": "ana"}
    attributes = event.payload["cloudevents"]
    assert attributes["id"] == "A234-1234-1234"
    assert attributes["source"] == "/storage/bucket-a"
    assert attributes["specversion"] == "1.0"
    assert attributes["comexampleextension"] == "value"
    assert attributes["datacontenttype"] == "application/json"
    assert "data" not in attributes


def test_source_is_the_resource_when_there_is_no_subject() -> None:
    event = receive(structured(cloud_event(subject=None))).events[0]
    assert event.resource.id == "/storage/bucket-a"
    assert "subject" not in event.payload["cloudevents"]


def test_occurred_comes_from_time_only_when_the_sender_gave_one() -> None:
    event = receive(structured(cloud_event(time=None))).events[0]
    assert event.occurred == START  # the injected clock, not a time the SDK made up
    assert "time" not in event.payload["cloudevents"]


def test_structured_data_base64_is_decoded() -> None:
    body = cloud_event(data=None, data_base64="aGVsbG8gd29ybGQ=", datacontenttype="text/plain")
    assert receive(structured(body)).events[0].payload["data"] == "hello world"


def binary_request(body: bytes | str, content_type: str, **extra: str) -> HookRequest:
    headers = {
        "ce-specversion": "1.0",
        "ce-type": "com.example.object.deleted",
        "ce-source": "/storage/bucket%20b",
        "ce-id": "B-1",
        "Content-Type": content_type,
        **extra,
    }
    return HookRequest.fake(method="POST", body=body, headers=headers)


def test_binary_mode_reads_ce_headers_percent_decoded_and_the_body_as_data() -> None:
    request = binary_request(
        json.dumps({"key": "old.csv"}), "application/json",
        **{"ce-subject": "objects/old.csv", "ce-time": "2024-01-02T03:04:05Z",
           "ce-traceparent": "00-abc"},
    )  # fmt: skip
    outcome = receive(request)
    assert outcome.status == 204, outcome.error
    event = outcome.events[0]
    assert event.event == "com.example.object.deleted"
    assert event.resource.id == "objects/old.csv"
    assert event.occurred == datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    assert event.payload["data"] == {"key": "old.csv"}
    assert event.payload["cloudevents"]["source"] == "/storage/bucket b"
    assert event.payload["cloudevents"]["traceparent"] == "00-abc"


def test_binary_mode_text_data_stays_text() -> None:
    event = receive(binary_request("42 widgets", "text/plain")).events[0]
    assert event.payload["data"] == "42 widgets"
    assert event.resource.id == "/storage/bucket b"
    assert event.occurred == START


@pytest.mark.parametrize("missing", ["id", "source", "specversion", "type"])
def test_a_missing_required_attribute_fails_the_request(missing: str) -> None:
    outcome = receive(structured(cloud_event(**{missing: None})))
    assert outcome.status == 400
    assert outcome.error is not None
    assert f"missing required attribute(s) {missing}" in outcome.error
    assert outcome.error.startswith("line 1: ")


def test_a_binary_message_missing_a_header_names_it() -> None:
    request = HookRequest.fake(
        method="POST",
        body="x",
        headers={"ce-type": "t", "ce-id": "1", "Content-Type": "text/plain"},
    )
    outcome = receive(request)
    assert outcome.status == 400
    assert "missing required attribute(s) source, specversion in its ce-* headers" in str(
        outcome.error
    )


def test_a_structured_body_that_is_not_an_object_fails() -> None:
    outcome = receive(structured(["not", "an", "event"]))
    assert outcome.status == 400
    assert "A structured CloudEvent must be a JSON object" in str(outcome.error)


def test_batch_yields_one_event_per_cloud_event() -> None:
    batch = [cloud_event(id="1", subject="a"), cloud_event(id="2", subject=None, time=None)]
    outcome = receive(structured(batch, "application/cloudevents-batch+json"))
    assert outcome.status == 204, outcome.error
    assert [e.resource.id for e in outcome.events] == ["a", "/storage/bucket-a"]
    assert [e.payload["cloudevents"]["id"] for e in outcome.events] == ["1", "2"]
    assert outcome.events[1].occurred == START


def test_a_bad_member_of_a_batch_names_its_position() -> None:
    batch = [cloud_event(), cloud_event(type=None)]
    outcome = receive(structured(batch, "application/cloudevents-batch+json"))
    assert outcome.status == 400
    assert "CloudEvent 2 of the batch: CloudEvent is missing required attribute(s) type" in str(
        outcome.error
    )


def test_an_empty_batch_fails() -> None:
    outcome = receive(structured([], "application/cloudevents-batch+json"))
    assert outcome.status == 400
    assert "at least one CloudEvent" in str(outcome.error)


def test_an_invalid_time_fails_with_a_clear_reason() -> None:
    outcome = receive(structured(cloud_event(time="yesterday-ish")))
    assert outcome.status == 400
    assert outcome.error is not None and "\n" not in outcome.error


def test_an_invalid_event_in_a_batch_names_its_position() -> None:
    batch = [cloud_event(), cloud_event(type="t" * 1025)]
    outcome = receive(structured(batch, "application/cloudevents-batch+json"))
    assert outcome.status == 400
    assert outcome.error == "Event 2 of 2: event: Event name must be at most 1024 characters"


def test_a_cloudevents_media_type_means_structured_mode_even_with_ce_headers() -> None:
    request = HookRequest.fake(
        method="POST",
        json=cloud_event(),
        headers={"Content-Type": STRUCTURED, "ce-type": "ignored.type", "ce-id": "ignored"},
    )
    event = receive(request).events[0]
    assert event.event == "com.example.object.created"
    assert event.payload["cloudevents"]["id"] == "A234-1234-1234"
