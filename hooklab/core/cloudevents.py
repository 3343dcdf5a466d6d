"""The `from_cloud_event` filter: a CloudEvent in either HTTP mode to a partial Prefect event."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from cloudevents.core.bindings.http import HTTPMessage, from_http
from cloudevents.core.formats.json import JSONFormat

REQUIRED_ATTRIBUTES = ("id", "source", "specversion", "type")
BATCH_TYPE = "application/cloudevents-batch+json"
STRUCTURED_HEADERS = {"content-type": "application/cloudevents+json"}
_FORMAT = JSONFormat()


class CloudEventError(ValueError):
    """A message that is not a valid CloudEvent."""


def from_cloud_event(body: Any, headers: Mapping[str, str]) -> str:
    """Render the CloudEvent in `body` and `headers` as partial Prefect event JSON.

    Structured mode (`application/cloudevents+json`) and binary mode (`ce-*` headers) are both
    read; a batch (`application/cloudevents-batch+json`, an extension) renders a JSON list.
    """
    lowered = {str(k).lower(): str(v) for k, v in headers.items()}
    content_type = lowered.get("content-type", "").split(";", 1)[0].strip().lower()
    if content_type == BATCH_TYPE:
        if not isinstance(body, list):
            raise CloudEventError("A CloudEvents batch must be a JSON array")
        if not body:
            raise CloudEventError("A CloudEvents batch must hold at least one CloudEvent")
        partials = []
        for number, item in enumerate(body, start=1):
            try:
                partials.append(_partial_event(item, STRUCTURED_HEADERS))
            except CloudEventError as exc:
                raise CloudEventError(f"CloudEvent {number} of the batch: {exc}") from None
        return json.dumps(partials)
    # The HTTP binding: a cloudevents media type means structured mode, whatever else is sent.
    structured = content_type.startswith("application/cloudevents")
    if not structured and any(name.startswith("ce-") for name in lowered):
        return json.dumps(_partial_event(body, lowered))
    return json.dumps(_partial_event(body, STRUCTURED_HEADERS))


def _partial_event(body: Any, headers: dict[str, str]) -> dict[str, Any]:
    binary = any(name.startswith("ce-") for name in headers)
    if binary:
        present = {name[3:] for name in headers if name.startswith("ce-")}
        raw = body if isinstance(body, (str, bytes)) else json.dumps(body)
    else:
        if not isinstance(body, Mapping):
            raise CloudEventError(
                "A structured CloudEvent must be a JSON object "
                "(send it as application/cloudevents+json, or use ce-* headers)"
            )
        present = set(body)
        raw = json.dumps(body)
    missing = [name for name in REQUIRED_ATTRIBUTES if name not in present]
    if missing:
        mode = "ce-* headers" if binary else "event"
        raise CloudEventError(
            f"CloudEvent is missing required attribute(s) {', '.join(missing)} in its {mode}"
        )
    data = raw.encode() if isinstance(raw, str) else raw
    try:
        event = from_http(HTTPMessage(headers=headers, body=data), _FORMAT)
    except Exception as exc:
        raise CloudEventError(f"Invalid CloudEvent: {' '.join(str(exc).split())}") from None
    attributes = {
        name: _attribute_text(value)
        for name, value in event.get_attributes().items()
        # The SDK fills in `time` when the sender gave none; Prefect's `occurred` must not.
        if name != "time" or "time" in present
    }
    partial: dict[str, Any] = {
        "event": attributes["type"],
        "resource": {"prefect.resource.id": attributes.get("subject") or attributes["source"]},
    }
    if "time" in attributes:
        partial["occurred"] = attributes["time"]
    data_value = event.get_data()
    if isinstance(data_value, bytes):
        data_value = data_value.decode("utf-8", errors="replace")
    partial["payload"] = {"data": data_value, "cloudevents": attributes}
    return partial


def _attribute_text(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    return value
