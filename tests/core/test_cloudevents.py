"""`{{ body|from_cloud_event(headers) }}` in structured, binary and batch mode (SPEC 6)."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any
from urllib.parse import quote
from uuid import UUID

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from hooklab.core.cloudevents import from_cloud_event, read_by_sdk
from hooklab.core.outcome import Outcome
from hooklab.core.pipeline import render_events
from hooklab.core.request import BodyError, HookRequest, template_variables
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


# The direct mapping of plain messages against the SDK's reading of every message: the same
# text, or the same error, on generated CloudEvents, valid and not.

ATTRIBUTE_VALUES = st.sampled_from(
    ["", "1.0", "0.3", "x", "A234-1234", "/storage/bucket a", "%20x%2", "é\u2603", 0, 1.5, True,
     None, {"a": 1}, ["b"]]
)  # fmt: skip
TIME_TEXTS = (
    ["2024-04-05T17:31:00Z", "2024-04-05T17:31:00.118733Z", "2024-04-05T17:31:00Z",
     "2024-04-05T17:31:00.1Z", "2024-04-05T17:31:00.123456Z",
     "2024-04-05T17:31:00.123456789Z", "2024-04-05T17:31:00+05:30", "2024-04-05T17:31:00-00:00",
     "2024-04-05T17:31:00.5+23:59", "2024-04-05T17:31:00+24:00", "2024-04-05T17:31:00+05:60",
     "2024-04-05T17:31:00.5-00:99", "2024-04-05t17:31:00z",
     "2024-04-05T24:00:00Z", "2024-02-30T00:00:00Z", "2024-04-05T17:31:60Z",
     "2024-04-05T17:31:00", "2024-04-05", "yesterday", "", "\u0662024-04-05T17:31:00Z",
     "2024-04-05 17:31:00Z", "2024-04-05T17:31:00.Z", "2024-04-05T17:31:00+0530", 1712338260,
     None]
)  # fmt: skip
TIMES = st.sampled_from(TIME_TEXTS)
EXTENSION_NAMES = st.sampled_from(
    ["traceparent", "datacontentencoding", "Upper", "with_underscore", "data_base64", "x-y",
     "\u00e9t\u00e9", "\u0661", ""]
)  # fmt: skip
DATA = st.recursive(
    st.one_of(st.text(max_size=5), st.integers(), st.floats(allow_nan=False), st.none()),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=6,
)
CONTENT_TYPES = st.sampled_from(
    ["application/json", "application/json", "application/json",
     "application/json; charset=utf-8", "text/plain", "text/json", "application/vnd.acme+json",
     "application/x-www-form-urlencoded", "", "APPLICATION/JSON"]
)  # fmt: skip


@st.composite
def attributes(draw: st.DrawFn) -> dict[str, Any]:
    """A CloudEvent's attributes: plain and valid, then as often as not with one defect or
    one oddity (a value, a time, an extension's name, a required attribute missing)."""
    found: dict[str, Any] = {
        "specversion": "1.0",
        "type": "com.example.created",
        "source": "/storage/bucket-a",
        "id": "A234-1234-1234",
    }
    for name in ("subject", "datacontenttype", "dataschema"):
        if draw(st.booleans()):
            found[name] = f"{name}-value"
    if draw(st.booleans()):
        found["time"] = "2024-04-05T17:31:00.118733Z"
    for name in draw(st.lists(st.sampled_from(["comexample", "ext1"]), max_size=2)):
        found[name] = "value"
    for _ in range(draw(st.sampled_from([0, 0, 1, 1, 2]))):
        defect = draw(st.sampled_from(["value", "time", "extension", "missing", "version"]))
        if defect == "value":
            found[draw(st.sampled_from([*REQUIRED, *OPTIONAL]))] = draw(ATTRIBUTE_VALUES)
        elif defect == "time":
            found["time"] = draw(TIMES)
        elif defect == "extension":
            found[draw(EXTENSION_NAMES)] = draw(st.one_of(st.just("value"), ATTRIBUTE_VALUES))
        elif defect == "missing":
            found.pop(draw(st.sampled_from(REQUIRED)), None)
        else:
            found["specversion"] = draw(st.sampled_from(["0.3", "2.0", 1.0, "", None]))
    keys = draw(st.permutations(sorted(found)))
    return {key: found[key] for key in keys}


REQUIRED = ["id", "source", "specversion", "type"]
OPTIONAL = ["subject", "datacontenttype", "dataschema"]


@st.composite
def structured_messages(draw: st.DrawFn) -> HookRequest:
    body = draw(attributes())
    if draw(st.integers(0, 5)):
        body["data"] = draw(DATA)
    if draw(st.integers(0, 9)) == 0:
        body["data_base64"] = draw(st.sampled_from(["aGVsbG8=", "not base64!"]))
    return structured(body)


@st.composite
def binary_messages(draw: st.DrawFn) -> HookRequest:
    headers = {}
    for name, value in draw(attributes()).items():
        text = value if isinstance(value, str) else json.dumps(value)
        headers[f"ce-{name}"] = quote(text) if draw(st.booleans()) else text
    if draw(st.integers(0, 9)) == 0:
        headers["ce-data"] = "reserved"
    headers["Content-Type"] = draw(CONTENT_TYPES)
    body = json.dumps(draw(DATA)) if draw(st.integers(0, 4)) else draw(st.text(max_size=8))
    return HookRequest.fake(method="POST", body=body, headers=headers)


@st.composite
def batches(draw: st.DrawFn) -> HookRequest:
    members = [draw(structured_messages()) for _ in range(draw(st.integers(0, 3)))]
    body = [json.loads(member.body) for member in members]
    if draw(st.integers(0, 9)) == 0:
        body.append(draw(DATA))
    return structured(body, "application/cloudevents-batch+json")


def rendered_or_error(read: Any, request: HookRequest) -> tuple[str, str]:
    try:
        variables = template_variables(request)
    except BodyError:  # (a JSON body that is not JSON fails before any template)
        assume(False)
    try:
        return "rendered", read(variables["body"], variables["headers"])
    except Exception as exc:
        return type(exc).__name__, str(exc)


@settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))
@given(request=st.one_of(structured_messages(), binary_messages(), batches()))
def test_plain_messages_map_as_the_sdk_reads_them(request: HookRequest) -> None:
    expected = rendered_or_error(read_by_sdk, request)
    assert rendered_or_error(from_cloud_event, request) == expected


@pytest.mark.parametrize("time", TIME_TEXTS)
@pytest.mark.parametrize("binary", [False, True])
def test_a_time_maps_as_the_sdk_reads_it(time: Any, binary: bool) -> None:
    if binary:
        request = binary_request("{}", "application/json", **{"ce-time": str(time)})
    else:
        request = structured(cloud_event(time=time))
    assert rendered_or_error(from_cloud_event, request) == rendered_or_error(read_by_sdk, request)


def test_the_everyday_message_is_mapped_without_the_sdk(monkeypatch: pytest.MonkeyPatch) -> None:
    """The benchmark's shapes take the direct mapping (the SDK is not called), and the
    mapping gives what the SDK gives."""
    from hooklab.core import cloudevents

    def no_sdk(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the SDK was called")

    body = cloud_event()
    binary = binary_request(json.dumps({"key": "old.csv"}), "application/json")
    expected = [rendered_or_error(read_by_sdk, r) for r in (structured(body), binary)]
    monkeypatch.setattr(cloudevents, "from_http", no_sdk)
    assert [rendered_or_error(from_cloud_event, r) for r in (structured(body), binary)] == expected
    assert expected[0][0] == expected[1][0] == "rendered"
