"""`hooklab.send` against a real receiver on the running loop, and the guard that makes a blocking
call to that receiver fail fast instead of hanging."""

from __future__ import annotations

import asyncio
import socket
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from receiver_helpers import run

import hooklab
from hooklab.notebook import sending
from hooklab.notebook.sending import BlockingCallError, send
from hooklab.server import Receiver
from hooklab.workspace import Workspace

SEED = """{
  "event": "model-update",
  "resource": {
    "prefect.resource.id": "product.models.{{ body.model }}",
    "prefect.resource.name": "{{ body.friendly_name }}"
  }
}"""


@pytest.fixture
def ws(tmp_path: Path) -> Iterator[Workspace]:
    workspace = Workspace(tmp_path / "hooklab.db")
    yield workspace
    workspace.close()


@asynccontextmanager
async def watched(ws: Workspace) -> AsyncIterator[Receiver]:
    receiver = Receiver(ws, verbose=True, admin_key="k").start()
    sending.watch(receiver)
    try:
        yield receiver
    finally:
        sending.unwatch(receiver)
        await receiver.shutdown()


def test_send_form_returns_status_and_the_outcome(ws: Workspace) -> None:
    hook = ws.create_webhook("models", SEED)

    async def scenario() -> hooklab.notebook.sending.Sent:
        async with watched(ws) as receiver:
            return await send(receiver.webhook_url(hook), form={"model": "m1"})

    sent = run(scenario())
    assert (sent.status, sent.body) == (204, "")
    assert sent.outcome is not None and sent.event.resource.id == "product.models.m1"
    assert repr(sent) == "Sent(status=204, event='model-update')"
    assert ws.events()["resource.id"].tolist() == ["product.models.m1"]


def test_a_failed_send_says_why_in_its_repr(ws: Workspace) -> None:
    hook = ws.create_webhook("models", SEED)

    async def scenario() -> hooklab.notebook.sending.Sent:
        async with watched(ws) as receiver:
            return await send(receiver.webhook_url(hook), form={"model": 'say "hi"'})

    sent = run(scenario())
    assert sent.error is not None and sent.error.startswith("Template output is not valid JSON")
    assert repr(sent) == (
        f"Sent(status=400, error={sent.error!r}, event='prefect-cloud.webhook.failed')"
    )


def test_send_json_and_raw_body_and_a_webhook_object(ws: Workspace) -> None:
    hook = ws.create_webhook("models", SEED)

    async def scenario() -> list[hooklab.notebook.sending.Sent]:
        async with watched(ws):
            return [
                await send(hook, json={"model": "j"}),
                await send(hook, body="{", headers={"Content-Type": "application/json"}),
                await send(hook, method="GET"),
            ]

    by_json, broken, get = run(scenario())
    assert by_json.event.resource.id == "product.models.j"
    assert broken.status == 400 and broken.body.startswith("Invalid JSON body")
    assert broken.outcome is not None and broken.outcome.error == broken.body.strip()
    assert get.status == 204 and get.outcome is not None
    assert get.outcome.request is not None and get.outcome.request.method == "GET"


def test_concurrent_sends_each_get_their_own_outcome(ws: Workspace) -> None:
    hook = ws.create_webhook("models", SEED)

    async def scenario() -> list[hooklab.notebook.sending.Sent]:
        async with watched(ws) as receiver:
            url = receiver.webhook_url(hook)
            return list(
                await asyncio.gather(*(send(url, form={"model": f"m{i}"}) for i in range(20)))
            )

    results = run(scenario())
    assert [s.event.resource.id for s in results] == [f"product.models.m{i}" for i in range(20)]


def test_unknown_slug_is_a_404_with_its_outcome(ws: Workspace) -> None:
    async def scenario() -> hooklab.notebook.sending.Sent:
        async with watched(ws) as receiver:
            return await send(receiver.webhook_url("no-such-slug"), form={"a": "b"})

    sent = run(scenario())
    assert sent.status == 404 and sent.outcome is not None and sent.outcome.status == 404


def test_a_receiver_elsewhere_gives_no_outcome(ws: Workspace) -> None:
    hook = ws.create_webhook("models", SEED)

    async def scenario() -> hooklab.notebook.sending.Sent:
        receiver = Receiver(ws, admin_key="k").start()  # not watched: as if in another process
        try:
            return await send(receiver.webhook_url(hook), form={"model": "x"})
        finally:
            await receiver.shutdown()

    sent = run(scenario())
    assert sent.status == 204 and sent.outcome is None


def test_unreachable_url_is_a_clear_error() -> None:
    port = _free_port()

    async def scenario() -> None:
        await send(f"http://127.0.0.1:{port}/hooks/x", form={"a": "b"})

    with pytest.raises(ConnectionError, match=f"Could not reach http://127.0.0.1:{port}"):
        run(scenario())


def test_a_webhook_needs_a_running_receiver(ws: Workspace) -> None:
    hook = ws.create_webhook("models", SEED)
    with pytest.raises(RuntimeError, match="No hooklab receiver is running"):
        run(send(hook))


def test_blocking_call_from_the_loop_thread_fails_fast_with_advice(ws: Workspace) -> None:
    hook = ws.create_webhook("models", SEED)

    async def scenario() -> tuple[float, str]:
        async with watched(ws) as receiver:
            started = time.monotonic()
            try:
                urllib.request.urlopen(receiver.webhook_url(hook), data=b"model=x", timeout=20)
            except urllib.error.URLError as exc:
                return time.monotonic() - started, str(exc.reason)
            return time.monotonic() - started, "no error"

    seconds, reason = run(scenario())
    assert seconds < 5
    assert "await hooklab.send" in reason
    assert ws.store.count("requests") == 0


def test_blocking_call_from_another_thread_still_works(ws: Workspace) -> None:
    hook = ws.create_webhook("models", SEED)

    def post(url: str) -> int:
        with urllib.request.urlopen(url, data=b"model=t", timeout=20) as answer:
            return int(answer.status)

    async def scenario() -> int:
        async with watched(ws) as receiver:
            return await asyncio.to_thread(post, receiver.webhook_url(hook))

    assert run(scenario()) == 204


def test_the_guard_leaves_other_ports_alone(ws: Workspace) -> None:
    port = _free_port()

    async def scenario() -> str:
        async with watched(ws):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5)
            except urllib.error.URLError as exc:
                return str(exc.reason)
            return "no error"

    reason = run(scenario())
    assert "refused" in reason.lower() and "hooklab" not in reason


def test_blocking_call_error_is_a_connection_refused_error() -> None:
    error = BlockingCallError()
    assert isinstance(error, ConnectionRefusedError) and "await hooklab.send" in str(error)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
