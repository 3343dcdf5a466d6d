"""Event validation with Prefect's limits and error texts (SPEC 5)."""

from __future__ import annotations

import warnings
from datetime import datetime, timedelta, timezone
from typing import Any
from uuid import UUID

import pytest
from pydantic_core import PydanticSerializationError

from hooklab.core.events import (
    MAXIMUM_PAYLOAD_DEPTH,
    MAXIMUM_SIZE_BYTES,
    EventError,
    ReceivedEvent,
    Resource,
    uuid7,
    validate_event,
)

WHEN = datetime(2024, 5, 1, tzinfo=timezone.utc)


def event(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "occurred": WHEN,
        "id": UUID(int=1),
        "event": "model.refreshed",
        "resource": {"prefect.resource.id": "product.models.recs"},
    }
    return {**base, **changes}


def error_of(data: dict[str, Any]) -> str:
    with pytest.raises(EventError) as caught:
        validate_event(data)
    text = str(caught.value)
    assert "\n" not in text
    return text


def related(count: int) -> list[dict[str, str]]:
    return [{"prefect.resource.id": f"r.{i}", "prefect.resource.role": "r"} for i in range(count)]


def test_a_minimal_event_is_valid_and_unknown_keys_are_ignored() -> None:
    valid = validate_event(event(extra="ignored", payload={"a": 1}))
    assert valid.resource.id == "product.models.recs"
    assert valid.related == []
    assert valid.payload == {"a": 1}
    assert not hasattr(valid, "extra")


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"resource": {}}, "resource: Resources must include the prefect.resource.id label"),
        (
            {"resource": {"prefect.resource.id": ""}},
            "resource: The prefect.resource.id label must be non-empty",
        ),
        (
            {"related": [{"prefect.resource.id": "x"}]},
            "related[0]: Related Resources must include the prefect.resource.role label",
        ),
        (
            {"related": [{"prefect.resource.id": "x", "prefect.resource.role": ""}]},
            "related[0]: The prefect.resource.role label must be non-empty",
        ),
        (
            {"related": [{"prefect.resource.role": "r"}]},
            "related[0]: Resources must include the prefect.resource.id label",
        ),
        (
            {"resource": {"prefect.resource.id": "x", **{f"l{i}": "v" for i in range(500)}}},
            "resource: The maximum number of labels per resource is 500",
        ),
        ({"related": related(101)}, "related: The maximum number of related resources is 100"),
        ({"event": "e" * 1025}, "event: Event name must be at most 1024 characters"),
        (
            {"resource": {"prefect.resource.id": "x", "size": 3}},
            'resource["size"]: Input should be a valid string, got 3',
        ),
        (
            {"resource": {"prefect.resource.id": "x", "public": True}},
            'resource["public"]: Input should be a valid string, got true',
        ),
        (
            {"related": [{"prefect.resource.id": "x", "prefect.resource.role": "r", "n": 1.5}]},
            'related[0]["n"]: Input should be a valid string, got 1.5',
        ),
        ({"id": "not-a-uuid"}, "id: Input should be a valid UUID"),
        ({"follows": "nope"}, "follows: Input should be a valid UUID"),
        ({"occurred": "yesterday"}, "occurred: Input should be a valid datetime"),
        ({"payload": [1, 2]}, "payload: Input should be a valid dictionary, got [1, 2]"),
        ({"event": None}, "event: Input should be a valid string, got null"),
        ({"resource": "x"}, 'resource: Input should be a valid dictionary, got "x"'),
    ],
)
def test_error_texts(changes: dict[str, Any], expected: str) -> None:
    assert error_of(event(**changes)).startswith(expected)


def test_limits_themselves_are_allowed() -> None:
    labels = {f"l{i}": "v" for i in range(499)}
    valid = validate_event(
        event(
            event="e" * 1024,
            resource={"prefect.resource.id": "x", **labels},
            related=related(100),
        )
    )
    assert len(valid.related) == 100


def test_several_bad_fields_are_listed_on_one_line() -> None:
    text = error_of({"resource": {"prefect.resource.id": "x"}})
    assert text == "occurred: Field required; event: Field required; id: Field required"


def test_oversize_event_is_refused_with_its_size() -> None:
    text = error_of(event(payload={"blob": "x" * MAXIMUM_SIZE_BYTES}))
    assert text.startswith("Refusing to publish event of size 15")
    assert "1500000 bytes" in text


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"payload": {"a": "x\ud800"}}, 'payload["a"]'),
        ({"payload": {"a": [1, {"\udfff": 2}]}}, 'payload["a"][1]["\\udfff"]'),
        ({"event": "model.\udc00"}, "event"),
        ({"resource": {"prefect.resource.id": "r\ud800"}}, 'resource["prefect.resource.id"]'),
    ],
)
def test_a_lone_surrogate_is_refused_by_field_in_one_line(
    changes: dict[str, Any], field: str
) -> None:
    text = error_of(event(**changes))
    assert text.startswith(f"{field}: text that is not valid Unicode (a lone surrogate, ")
    assert "Pydantic" not in text and "UnicodeEncodeError" not in text


def nested(levels: int) -> dict[str, Any]:
    """A payload `levels` deep, its own object the first level."""
    value: dict[str, Any] = {}
    for _ in range(levels - 1):
        value = {"a": value}
    return value


def test_a_payload_nested_too_deep_is_refused_with_its_depth() -> None:
    assert validate_event(event(payload=nested(MAXIMUM_PAYLOAD_DEPTH))).payload
    text = error_of(event(payload={"list": [[[nested(MAXIMUM_PAYLOAD_DEPTH)]]]}))
    assert text == (
        f"payload: nested {MAXIMUM_PAYLOAD_DEPTH + 4} levels deep, deeper than the "
        f"{MAXIMUM_PAYLOAD_DEPTH} levels an event can hold"
    )


def test_a_value_no_request_can_bring_still_fails_as_the_bug_it_is() -> None:
    with pytest.raises(PydanticSerializationError):
        validate_event(event(payload={"a": object()}))


def test_occurred_is_read_as_utc() -> None:
    naive = validate_event(event(occurred="2024-05-01T14:00:00"))
    assert naive.occurred == datetime(2024, 5, 1, 14, tzinfo=timezone.utc)
    offset = validate_event(event(occurred="2024-05-01T14:00:00+02:00"))
    assert offset.occurred == datetime(2024, 5, 1, 12, tzinfo=timezone.utc)
    assert offset.occurred.utcoffset() == timedelta(0)


def test_uuid7_is_version_7_and_time_ordered() -> None:
    first, second = uuid7(), uuid7()
    assert first.version == 7
    assert first.variant == "specified in RFC 4122"
    assert first.int >> 80 <= second.int >> 80


def test_uuid7_ids_are_unique_whole_uuids_across_refills_of_the_random_pool() -> None:
    ids = [uuid7() for _ in range(2000)]  # the 4 KiB pool is refilled four times
    assert len(set(ids)) == len(ids)
    for made in ids[::97]:
        again = UUID(str(made))
        assert (made, hash(made), made.version) == (again, hash(again), 7)
        assert made.int >> 80 == again.int >> 80


def test_received_events_built_without_validation_dump_without_warnings() -> None:
    built = ReceivedEvent.model_construct(
        occurred=WHEN,
        event="x",
        resource=Resource.model_construct({"prefect.resource.id": "a"}),
        related=[],
        payload={"n": 1},
        id=UUID(int=5),
        follows=None,
        received=WHEN,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        dumped = built.model_dump(mode="json")
        built.model_dump_json()
    assert dumped["resource"] == {"prefect.resource.id": "a"}
    assert dumped["id"] == "00000000-0000-0000-0000-000000000005"
