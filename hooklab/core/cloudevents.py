"""The `from_cloud_event` filter: a CloudEvent in either HTTP mode to a partial Prefect event.

The CloudEvents SDK reads every message, but a message whose attributes are all plainly valid
(the everyday kind: specversion 1.0, non-empty string attributes, an RFC 3339 time, extension
names in lowercase letters and digits, JSON data) is mapped directly by `_plain_partial`, which
gives the same partial event without writing the body as JSON for the SDK to parse again.
Anything else, valid or not, goes through the SDK, for its values and its errors; the tests
of this module compare the two on generated messages.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any
from urllib.parse import unquote

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
    try:
        return _render(body, lowered, quick=True)
    except Exception:
        pass  # read again by the SDK alone, for its error
    return _render(body, lowered, quick=False)


def read_by_sdk(body: Any, headers: Mapping[str, str]) -> str:
    """What `from_cloud_event` renders, every message read by the CloudEvents SDK: the
    reference its direct mapping of plain messages is tested against."""
    return _render(body, {str(k).lower(): str(v) for k, v in headers.items()}, quick=False)


def _render(body: Any, lowered: dict[str, str], *, quick: bool) -> str:
    content_type = lowered.get("content-type", "").split(";", 1)[0].strip().lower()
    if content_type == BATCH_TYPE:
        if not isinstance(body, list):
            raise CloudEventError("A CloudEvents batch must be a JSON array")
        if not body:
            raise CloudEventError("A CloudEvents batch must hold at least one CloudEvent")
        partials = []
        for number, item in enumerate(body, start=1):
            try:
                partials.append(_partial_event(item, STRUCTURED_HEADERS, quick=quick))
            except CloudEventError as exc:
                raise CloudEventError(f"CloudEvent {number} of the batch: {exc}") from None
        return json.dumps(partials)
    # The HTTP binding: a cloudevents media type means structured mode, whatever else is sent.
    structured = content_type.startswith("application/cloudevents")
    if not structured and any(name.startswith("ce-") for name in lowered):
        return json.dumps(_partial_event(body, lowered, quick=quick))
    return json.dumps(_partial_event(body, STRUCTURED_HEADERS, quick=quick))


def _partial_event(body: Any, headers: dict[str, str], *, quick: bool) -> dict[str, Any]:
    """The partial event of one CloudEvent. `quick`: a plainly valid message is mapped
    directly; should anything then fail (this message, a later one of a batch, or writing the
    JSON), the caller reads every message again with the SDK alone, for the SDK's error."""
    binary = any(name.startswith("ce-") for name in headers)
    if quick:
        plain = _plain_partial(body, headers, binary=binary)
        if plain is not None:
            return plain
    return _sdk_partial(body, headers, binary=binary)


def _sdk_partial(body: Any, headers: dict[str, str], *, binary: bool) -> dict[str, Any]:
    """The partial event of a CloudEvent read by the SDK: every message, and its errors."""
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
    data_value = event.get_data()
    if isinstance(data_value, bytes):
        data_value = data_value.decode("utf-8", errors="replace")
    return _mapped(attributes, data_value)


def _mapped(attributes: dict[str, Any], data: Any) -> dict[str, Any]:
    """The partial event of a CloudEvent's attributes (time as text) and data (SPEC 6)."""
    partial: dict[str, Any] = {
        "event": attributes["type"],
        "resource": {"prefect.resource.id": attributes.get("subject") or attributes["source"]},
    }
    if "time" in attributes:
        partial["occurred"] = attributes["time"]
    partial["payload"] = {"data": data, "cloudevents": attributes}
    return partial


# What the SDK's CloudEvent 1.0 checks, as plain conditions: the attributes that must be
# non-empty strings, and the names an extension may have.
_NON_EMPTY_TEXT = ("id", "source", "type", "subject", "datacontenttype", "dataschema")
_EXTENSION_NAME = re.compile(r"[a-z0-9]+", re.ASCII).fullmatch
# RFC 3339 as most senders write it: where the SDK's parser (dateutil's isoparse) and
# `datetime.fromisoformat` read it alike, as the tests check. (An offset's minutes past 59 are
# refused by the SDK, but carried into the hour by fromisoformat: +05:60 would read as +06:00.)
_PLAIN_TIME = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?(Z|[+-][0-9]{2}:[0-5][0-9])",
    re.ASCII,
).fullmatch
# The SDK's test of a JSON media type (`JSONFormat.JSON_CONTENT_TYPE_PATTERN`), for binary data.
_JSON_DATA_TYPE = re.compile(r"^(application|text)/([a-zA-Z0-9\-\.]+\+)?json(;.*)?$").match


def _plain_partial(body: Any, headers: dict[str, str], *, binary: bool) -> dict[str, Any] | None:
    """The partial event the SDK would give for a plainly valid CloudEvent 1.0, or None when
    the message is anything else (then the SDK reads it)."""
    data: Any
    if binary:
        attributes: dict[str, Any] = {}
        for name, value in headers.items():
            if name.startswith("ce-"):
                attributes[name[3:]] = unquote(value)
            elif name == "content-type":
                attributes["datacontenttype"] = value
        # The SDK parses JSON data from the body's text; the template's body is that value.
        if type(body) is not dict and type(body) is not list:
            return None
        if not _JSON_DATA_TYPE(attributes.get("datacontenttype") or "application/json"):
            return None
        if "data" in attributes:  # (a reserved name, refused by the SDK)
            return None
        data = body
    else:
        if type(body) is not dict:
            return None
        attributes = {name: value for name, value in body.items() if name != "data"}
        data = body.get("data")
    if attributes.get("specversion") != "1.0":
        return None
    for name in _NON_EMPTY_TEXT:
        if name in attributes or name in _REQUIRED_TEXT:
            given = attributes.get(name)
            if type(given) is not str or not given:
                return None
    for name in attributes:
        if name not in _KNOWN_ATTRIBUTES and not _EXTENSION_NAME(name):
            return None
    if "time" in attributes:
        time = attributes["time"]
        if type(time) is not str or not _PLAIN_TIME(time):
            return None
        try:
            attributes["time"] = datetime.fromisoformat(time).isoformat()
        except ValueError:
            return None
    return _mapped(attributes, data)


_REQUIRED_TEXT = frozenset({"id", "source", "type"})
_KNOWN_ATTRIBUTES = frozenset({*_NON_EMPTY_TEXT, "specversion", "time"})


def _attribute_text(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    return value
