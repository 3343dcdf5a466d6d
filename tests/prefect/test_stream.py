"""The event socket against a real Tornado websocket server on loopback, shaped as Prefect's
`/api/events/in`: events of every frame size arrive whole and in order, batch after batch."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from pathlib import Path
from typing import Any

from receiver_helpers import run
from tornado.httpserver import HTTPServer
from tornado.web import Application
from tornado.websocket import WebSocketHandler

from hooklab.core.request import HookRequest
from hooklab.prefect import Forwarding
from hooklab.prefect.client import Credentials, PrefectApi
from hooklab.prefect.stream import EventStream
from hooklab.workspace import Workspace


class EventsIn(WebSocketHandler):
    """What hooklab needs of Prefect's socket: the subprotocol, the auth message, pongs."""

    received: list[str]

    def initialize(self, received: list[str]) -> None:
        self.received = received

    def select_subprotocol(self, subprotocols: list[str]) -> str | None:
        return "prefect" if "prefect" in subprotocols else None

    def on_message(self, message: str | bytes) -> None:
        assert isinstance(message, str)  # a text frame, unmasked by the server
        found: Any = json.loads(message)
        if found.get("type") == "auth":
            self.write_message(json.dumps({"type": "auth_success"}))
        else:
            self.received.append(message)


def test_events_of_every_frame_size_arrive_whole_and_in_order() -> None:
    # Frame lengths take 7 bits up to 125 bytes, 16 bits up to 65535, then 64 bits.
    texts = [
        json.dumps({"id": str(number), "note": "é" * size})
        for number, size in enumerate([0, 50, 108, 109, 200, 40_000, 70_000, 1])
    ]

    async def scenario() -> list[str]:
        received: list[str] = []
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        listener.setblocking(False)
        server = HTTPServer(Application([(r"/api/events/in", EventsIn, {"received": received})]))
        server.add_sockets([listener])
        url = f"http://127.0.0.1:{listener.getsockname()[1]}/api"
        stream = EventStream(PrefectApi(url, Credentials(auth_string="user:pass")))
        try:
            await stream.send(texts[:5])
            await stream.send(texts[5:])
        finally:
            await stream.aclose()
            server.stop()
            await asyncio.wait_for(server.close_all_connections(), 5)
        return received

    assert run(scenario()) == texts


def test_the_python_masking_is_the_same_as_tornados_own() -> None:
    """What a Tornado without its C extension falls back to, against the C masking."""
    import os

    from tornado.util import _websocket_mask_python

    from hooklab.prefect.stream import _masked_by_int

    for size in (0, 1, 3, 4, 5, 125, 126, 1000, 70_001):
        data, mask = os.urandom(size), os.urandom(4)
        assert _masked_by_int(mask, data) == _websocket_mask_python(mask, data)


def test_a_prefect_whose_events_cannot_be_read_back_is_told_once_and_still_delivered(
    tmp_path: Path,
) -> None:
    """A key that may send events but not read them (here: a sink with no /events/filter):
    hooklab cannot prove storage, says so once, and counts what was acknowledged."""
    received: list[str] = []
    loop = asyncio.new_event_loop()
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    listener.setblocking(False)

    def serve() -> None:
        asyncio.set_event_loop(loop)
        server = HTTPServer(Application([(r"/api/events/in", EventsIn, {"received": received})]))
        server.add_sockets([listener])
        loop.run_forever()

    threading.Thread(target=serve, daemon=True).start()
    url = f"http://127.0.0.1:{listener.getsockname()[1]}/api"
    ws = Workspace(tmp_path / "hooklab.db")
    hook = ws.create_webhook("sink", '{"event": "e", "resource": {"prefect.resource.id": "r"}}')
    ws.forward_to(url)
    for _ in range(3):
        ws.receive(hook.slug, HookRequest.fake(method="POST", json={}))
    told: list[str] = []
    sender = Forwarding(
        ws,
        credentials={url: Credentials(auth_string="user:pass")},
        on_error=lambda _url, line: told.append(line),
    ).start()
    try:
        assert sender.wait_until_delivered(30)
        ws.receive(hook.slug, HookRequest.fake(method="POST", json={}))
        assert sender.wait_until_delivered(30)
    finally:
        sender.close()
        loop.call_soon_threadsafe(loop.stop)
    assert len(received) == 4 and len(told) == 1
    assert told[0].startswith("cannot read events back to confirm that Prefect stored them (")
    assert told[0].endswith("; counting the events it acknowledges as delivered")
    [state] = ws.forwarding()
    assert (state.pending, state.delivered, state.failing) == (0, 4, False)
    ws.close()
