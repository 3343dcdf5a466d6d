"""The receiver over real loopback sockets against what a hostile sender shapes to find where
its shortcuts and the slow path part: each request gets the slow path's event or its error,
in one line, and is stored with it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from receiver_helpers import run, send, serving, stored_events

from hooklab.core.cloudevents import read_by_sdk
from hooklab.workspace import Workspace

CLOUD_EVENT_TEMPLATE = "{{ body|from_cloud_event(headers) }}"
PASS_THROUGH_TEMPLATE = "{{ body|tojson }}"
ATTRIBUTES = {"specversion": "1.0", "id": "A-1", "source": "/s", "type": "t.created"}


@pytest.fixture
def ws(tmp_path: Path) -> Iterator[Workspace]:
    workspace = Workspace(tmp_path / "hooklab.db")
    yield workspace
    workspace.close()


def post(ws: Workspace, template: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
    hook = ws.create_webhook("hostile", template)

    async def scenario() -> tuple[int, bytes]:
        async with serving(ws, verbose=True) as receiver:
            reply = await send(receiver.webhook_url(hook), "POST", body=body, headers=headers)
            return reply.status, reply.body

    return run(scenario())


@pytest.mark.parametrize("binary", [False, True], ids=["structured", "binary"])
def test_a_cloud_event_time_whose_offset_has_60_minutes_fails_as_the_sdk_says(
    ws: Workspace, binary: bool
) -> None:
    """+05:60 is no offset: the SDK refuses it, where Python's own parser would carry it into
    the hour (+06:00) and acknowledge an event the slow path never gives."""
    time = "2024-04-05T17:31:00+05:60"
    if binary:
        headers = {f"ce-{name}": value for name, value in ATTRIBUTES.items()}
        headers.update({"ce-time": time, "Content-Type": "application/json"})
        body: object = {"size": 1}
    else:
        headers = {"Content-Type": "application/cloudevents+json"}
        body = {**ATTRIBUTES, "time": time, "data": {"size": 1}}
    with pytest.raises(ValueError) as refused:
        read_by_sdk(body, {name.lower(): value for name, value in headers.items()})
    status, answer = post(ws, CLOUD_EVENT_TEMPLATE, json.dumps(body).encode(), headers)
    assert status == 400
    assert answer.decode().strip() == f"line 1: {refused.value}"
    assert "\n" not in answer.decode().strip()
    (failed,) = stored_events(ws, failed=True)
    assert failed["payload"]["error"] == f"line 1: {refused.value}"
    assert stored_events(ws, failed=False) == []


@pytest.mark.parametrize(
    "text",
    [
        '"' + "0" * 1_400_000 + '"',
        '"' + "1234567890123456789x" * 70_000 + '"',
        '"' + (" " * 100 + "1234567890123456789x") * 11_000 + '"',
        '"1234567890123456789", "n": 12345678901234567890123',
    ],
    ids=["one-long-run", "many-runs", "runs-after-whitespace", "a-long-integer"],
)
def test_a_body_of_long_digit_runs_gives_the_event_json_loads_gives(
    ws: Workspace, text: str
) -> None:
    head = '{"event": "e", "resource": {"prefect.resource.id": "r"}, "payload": {"a": '
    body = head + text + "}}"
    status, _ = post(ws, PASS_THROUGH_TEMPLATE, body.encode(), {"Content-Type": "application/json"})
    assert status == 204
    (event,) = stored_events(ws, failed=False)
    assert event["payload"] == json.loads(body)["payload"]


@pytest.mark.parametrize(
    ("payload", "error"),
    [
        (
            '{"a": "\\ud800"}',
            'payload["a"]: text that is not valid Unicode (a lone surrogate, "\\ud800"), '
            "which an event cannot hold",
        ),
        (
            '{"a": ' + "[" * 299 + "]" * 299 + "}",
            "payload: nested 300 levels deep, deeper than the 256 levels an event can hold",
        ),
    ],
    ids=["lone-surrogate", "nested-300-deep"],
)
def test_a_payload_no_event_can_hold_is_answered_in_one_line_and_stored(
    ws: Workspace, payload: str, error: str
) -> None:
    body = '{"event": "e", "resource": {"prefect.resource.id": "r"}, "payload": ' + payload + "}"
    status, answer = post(
        ws, PASS_THROUGH_TEMPLATE, body.encode(), {"Content-Type": "application/json"}
    )
    assert (status, answer.decode()) == (400, error + "\n")
    (failed,) = stored_events(ws, failed=True)
    assert failed["payload"]["error"] == error
    assert failed["payload"]["body"] == body
