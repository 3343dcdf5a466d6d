"""Prefect's event model and its validation, with Prefect's limits and error texts (SPEC 5)."""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any
from uuid import UUID, SafeUUID

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    RootModel,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticSerializationError
from typing_extensions import Self

MAXIMUM_LABELS_PER_RESOURCE = 500
MAXIMUM_RELATED_RESOURCES = 100
MAXIMUM_EVENT_NAME_LENGTH = 1024
MAXIMUM_SIZE_BYTES = 1_500_000


def uuid7() -> UUID:
    """A time-ordered UUID (RFC 9562 version 7), as Prefect uses for event ids: 48 bits of
    Unix milliseconds, then 80 random bits but for the version and variant bits.

    Two ids are made per request, so this takes a third of the time `UUID(int=...)` and
    `os.urandom(10)` would: the random bits come from a pool filled by `os.urandom` 4 KiB at a
    time, and the UUID is made without re-checking a value that is in range by construction.
    """
    global _pool, _taken
    if _taken + 10 > len(_pool):
        _pool, _taken = os.urandom(4096), 0
    random = int.from_bytes(_pool[_taken : _taken + 10], "big")
    _taken += 10
    millis = (time.time_ns() // 1_000_000) & _UUID7_MILLIS
    made = object.__new__(UUID)
    # UUID forbids attribute writes; its own constructor sets these two slots the same way.
    object.__setattr__(made, "int", ((millis << 80) | random) & _UUID7_CLEAR | _UUID7_SET)
    object.__setattr__(made, "is_safe", SafeUUID.unknown)
    return made


_UUID7_MILLIS = (1 << 48) - 1
_UUID7_CLEAR = ~((0xF << 76) | (0b11 << 62))
_UUID7_SET = (0x7 << 76) | (0b10 << 62)
_pool, _taken = b"", 0


class Resource(RootModel[dict[str, str]]):
    """A flat mapping of string labels; `prefect.resource.id` is required and non-empty."""

    @model_validator(mode="after")
    def enforce_maximum_labels(self) -> Self:
        if len(self.root) > MAXIMUM_LABELS_PER_RESOURCE:
            raise ValueError(
                f"The maximum number of labels per resource is {MAXIMUM_LABELS_PER_RESOURCE}"
            )
        return self

    @model_validator(mode="after")
    def requires_resource_id(self) -> Self:
        if "prefect.resource.id" not in self.root:
            raise ValueError("Resources must include the prefect.resource.id label")
        if not self.root["prefect.resource.id"]:
            raise ValueError("The prefect.resource.id label must be non-empty")
        return self

    @property
    def id(self) -> str:
        return self.root["prefect.resource.id"]

    @property
    def name(self) -> str | None:
        return self.root.get("prefect.resource.name")


class RelatedResource(Resource):
    """A resource with a non-empty `prefect.resource.role`."""

    @model_validator(mode="after")
    def requires_resource_role(self) -> Self:
        if "prefect.resource.role" not in self.root:
            raise ValueError("Related Resources must include the prefect.resource.role label")
        if not self.root["prefect.resource.role"]:
            raise ValueError("The prefect.resource.role label must be non-empty")
        return self

    @property
    def role(self) -> str:
        return self.root["prefect.resource.role"]


class Event(BaseModel):
    """An event as Prefect's API accepts it. Unknown top-level keys are ignored."""

    model_config = ConfigDict(extra="ignore")

    occurred: datetime
    event: str
    resource: Resource
    related: list[RelatedResource] = Field(default_factory=list)
    payload: dict[str, Any] = Field(default_factory=dict)
    id: UUID
    follows: UUID | None = None

    @field_validator("occurred")
    @classmethod
    def occurred_in_utc(cls, value: datetime) -> datetime:
        # Prefect reads a naive time as UTC.
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)

    @field_validator("event")
    @classmethod
    def enforce_maximum_event_name_length(cls, value: str) -> str:
        if len(value) > MAXIMUM_EVENT_NAME_LENGTH:
            raise ValueError(f"Event name must be at most {MAXIMUM_EVENT_NAME_LENGTH} characters")
        return value

    @field_validator("related")
    @classmethod
    def enforce_maximum_related(cls, value: list[RelatedResource]) -> list[RelatedResource]:
        if len(value) > MAXIMUM_RELATED_RESOURCES:
            raise ValueError(
                f"The maximum number of related resources is {MAXIMUM_RELATED_RESOURCES}"
            )
        return value


class ReceivedEvent(Event):
    """An event as stored: with the time hooklab received the request that produced it, and
    the webhook that produced it as the last of its related resources (SPEC 5.5), which may
    be one more than Prefect lets a template give."""

    received: datetime

    @field_validator("related")
    @classmethod
    def enforce_maximum_related(cls, value: list[RelatedResource]) -> list[RelatedResource]:
        if len(value) > MAXIMUM_RELATED_RESOURCES + 1:
            raise ValueError(
                f"The maximum number of related resources is {MAXIMUM_RELATED_RESOURCES}"
            )
        return value


class EventError(ValueError):
    """Template output that is not a valid event; the message is one line, by field."""


def validate_event(data: dict[str, Any]) -> Event:
    """Validate a partial event whose defaults are already filled in.

    Raises `EventError` whose text names each bad field, with Prefect's wording.
    """
    try:
        event = Event.model_validate(data)
    except ValidationError as exc:
        raise EventError(describe_validation_error(exc)) from None
    try:
        size = len(event.model_dump_json().encode())
    except PydanticSerializationError as exc:
        raise EventError(_unwritable(event, exc)) from exc
    if size > MAXIMUM_SIZE_BYTES:
        # Prefect's own wording when it drops an oversize event, made one readable line.
        raise EventError(
            f"Refusing to publish event of size {size} bytes: the maximum size of an event "
            f"serialized to JSON is {MAXIMUM_SIZE_BYTES} bytes"
        )
    return event


# The deepest payload pydantic writes as JSON, the payload's own object counted as level 1.
MAXIMUM_PAYLOAD_DEPTH = 256


def _unwritable(event: Event, exc: PydanticSerializationError) -> str:
    """Why a valid event cannot be written as JSON, in a template author's words, for the two
    causes a request can bring: text with a lone surrogate (a JSON escape like \\ud800 with no
    pair, which no UTF-8 can hold) and a payload nested too deep. Anything else is a bug, and
    `exc` goes on as it is."""
    fields = {
        "event": event.event,
        "resource": event.resource.root,
        "related": [item.root for item in event.related],
        "payload": event.payload,
    }
    if "surrogates not allowed" in str(exc):
        for path, text in _texts(fields):
            surrogate = _SURROGATE.search(text)
            if surrogate is not None:
                return (
                    f"{_field_path(path)}: text that is not valid Unicode (a lone surrogate, "
                    f"{json.dumps(surrogate.group())}), which an event cannot hold"
                )
    elif "serialization depth" in str(exc):
        depth = _depth(event.payload)
        if depth > MAXIMUM_PAYLOAD_DEPTH:
            return (
                f"payload: nested {depth} levels deep, deeper than the "
                f"{MAXIMUM_PAYLOAD_DEPTH} levels an event can hold"
            )
    raise exc


_SURROGATE = re.compile("[\ud800-\udfff]")


def _texts(value: Any) -> Iterator[tuple[tuple[int | str, ...], str]]:
    """Every string in a JSON value, keys included, with its path; without recursion, since
    the value may be nested deeper than Python recurses."""
    pending: list[tuple[tuple[int | str, ...], Any]] = [((), value)]
    while pending:
        path, item = pending.pop()
        if isinstance(item, str):
            yield path, item
        elif isinstance(item, dict):
            for key, inner in reversed(item.items()):
                pending += [((*path, key), inner), ((*path, key), key)]  # the key first
        elif isinstance(item, list):
            pending.extend(
                ((*path, index), inner) for index, inner in reversed(list(enumerate(item)))
            )


def _depth(value: Any) -> int:
    """How many objects and arrays deep a JSON value nests (a scalar: 0), without recursion."""
    deepest, pending = 0, [(1, value)]
    while pending:
        level, item = pending.pop()
        if isinstance(item, dict):
            item = list(item.values())
        elif not isinstance(item, list):
            continue
        deepest = max(deepest, level)
        pending.extend((level + 1, inner) for inner in item)
    return deepest


def describe_validation_error(exc: ValidationError) -> str:
    """Pydantic's errors as one line, by field: `resource["n"]: Input should be ...; ...`.

    Labels contain dots, so a path is written the way a template author would index it.
    A value of the wrong type is quoted, shortened, so the author can find it.
    """
    parts = []
    for error in exc.errors(include_url=False):
        message = " ".join(str(error["msg"]).removeprefix("Value error, ").split())
        if error["type"] in _QUOTE_INPUT_FOR:
            message += f", got {_short_repr(error['input'])}"
        parts.append(f"{_field_path(error['loc'])}: {message}")
    return "; ".join(parts)


_QUOTE_INPUT_FOR = frozenset(
    {"string_type", "dict_type", "list_type", "uuid_type", "uuid_parsing", "datetime_type",
     "datetime_from_date_parsing", "datetime_parsing", "model_type"}
)  # fmt: skip


def _field_path(loc: tuple[int | str, ...]) -> str:
    if not loc:
        return "event"
    path = str(loc[0])
    for part in loc[1:]:
        path += f"[{part}]" if isinstance(part, int) else f"[{json.dumps(part)}]"
    return path


def _short_repr(value: Any, limit: int = 40) -> str:
    try:
        text = json.dumps(value, default=str)
    except ValueError:
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
