"""What a case expects: an outcome written as an expectation, and how an outcome differs
from one, each differing field named by its path."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from hooklab.core.culprit import parser_words
from hooklab.core.outcome import Outcome

# Fields an expectation leaves out unless it gives them: they differ on every delivery.
UNSTABLE_FIELDS = ("id", "occurred", "received")


@dataclass(frozen=True)
class Difference:
    """One field whose value differs from what the case expects."""

    field: str
    expected: Any
    actual: Any

    def __str__(self) -> str:
        return f"{self.field}: expected {_show(self.expected)}, got {_show(self.actual)}"


_ABSENT: Any = type("Absent", (), {"__repr__": lambda self: "(absent)"})()


def _show(value: Any) -> str:
    if value is _ABSENT:
        return "(absent)"
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 200 else text[:197] + "..."


def event_fields(outcome: Outcome) -> list[dict[str, Any]]:
    """The outcome's events as JSON, without the webhook's own related resource (its id is
    the workspace's, not the case's)."""
    found = []
    for event in outcome.events:
        data = event.model_dump(mode="json")
        related = data.get("related") or []
        if related and related[-1].get("prefect.resource.role") == "webhook":
            data["related"] = related[:-1]
        found.append(data)
    return found


def expectation(outcome: Outcome) -> dict[str, Any]:
    """What an outcome becomes as a case's `expect`: no ids or times, no empty fields."""
    if outcome.failed:
        # The character offset moves with any edit above it; line and column say enough.
        error = _CHAR_OFFSET.sub("", parser_words(outcome.error or ""))
        return {"status": outcome.status, "error": error}
    events = []
    for data in event_fields(outcome):
        kept = {k: v for k, v in data.items() if k not in UNSTABLE_FIELDS}
        if not kept.get("related"):
            kept.pop("related", None)
        if kept.get("follows") is None:
            kept.pop("follows", None)
        events.append(kept)
    return {"status": outcome.status, "events": events}


_CHAR_OFFSET = re.compile(r" \(char \d+\)$")


def compare(expect: Mapping[str, Any], outcome: Outcome) -> list[Difference]:
    """How an outcome differs from a case's `expect` (SPEC 13); empty when it passes."""
    found = []
    if "status" in expect and expect["status"] != outcome.status:
        found.append(Difference("status", expect["status"], outcome.status))
    if "error" in expect and (
        outcome.error is None
        or (
            expect["error"] not in outcome.error
            and expect["error"] not in parser_words(outcome.error)
        )
    ):
        found.append(Difference("error", expect["error"], outcome.error))
    if "events" in expect:
        actual = event_fields(outcome) if not outcome.failed else []
        wanted = expect["events"]
        if len(wanted) != len(actual):
            found.append(Difference("events (count)", len(wanted), len(actual)))
        for number, (want, got) in enumerate(zip(wanted, actual, strict=False)):
            for key, value in want.items():
                found.extend(_differences(f"events[{number}].{key}", value, got.get(key, _ABSENT)))
    return found


def _differences(where: str, expected: Any, actual: Any) -> Iterator[Difference]:
    """Nested keys compared exactly, each differing leaf named by its path."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        for key in [*expected, *(k for k in actual if k not in expected)]:
            yield from _differences(
                f"{where}[{json.dumps(key)}]",
                expected.get(key, _ABSENT),
                actual.get(key, _ABSENT),
            )
    elif expected != actual or type(expected) is not type(actual):
        yield Difference(where, expected, actual)


def outcome_shape(outcome: Outcome) -> Any:
    """What `--dedupe` compares: the status, the failure's reason, the events' names and the
    shape of their fields (keys and value types, not the values)."""
    if outcome.failed:
        return (outcome.status, outcome.reason)
    events = expectation(outcome)["events"]
    return (outcome.status, tuple((data.get("event"), _shape(data)) for data in events))


def _shape(value: Any) -> Any:
    if isinstance(value, dict):
        return tuple((key, _shape(item)) for key, item in sorted(value.items()))
    if isinstance(value, list):
        return ("list", tuple(sorted({repr(_shape(item)) for item in value})))
    return type(value).__name__
