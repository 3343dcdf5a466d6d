"""Events into Prefect over the websocket Prefect's own client uses: `<api>/events/in`.

One transport for both kinds of Prefect: Prefect Cloud takes events on this socket with the
Bearer key in the upgrade request; a self-hosted server takes them after an `auth` message
(and, with `PREFECT_SERVER_API_AUTH_STRING` set, basic auth on the upgrade). The socket has no
per-event answer, so a batch counts as taken when the server answers a ping sent after it, as
Prefect's client checkpoints.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import struct
from collections.abc import Sequence
from typing import Any

from tornado.httpclient import HTTPClientError, HTTPRequest
from tornado.iostream import StreamClosedError
from tornado.simple_httpclient import HTTPTimeoutError
from tornado.websocket import (
    WebSocketClientConnection,
    WebSocketClosedError,
    WebSocketError,
    websocket_connect,
)

from hooklab.prefect.client import PrefectApi, PrefectError

__all__ = ["EventStream", "client_frames"]


class EventStream:
    """A websocket to one Prefect API, opened on first use and again after any failure.

    >>> stream = EventStream(PrefectApi("http://127.0.0.1:4200/api"))   # doctest: +SKIP
    >>> await stream.send(['{"id": "...", "event": "...", ...}'])        # doctest: +SKIP
    """

    def __init__(self, api: PrefectApi, *, timeout: float = 10.0) -> None:
        self.api = api
        self.timeout = timeout
        self._socket: WebSocketClientConnection | None = None
        self._pongs: dict[bytes, asyncio.Future[None]] = {}
        self._pings = 0
        self._closed: asyncio.Future[Any] | None = None  # done when the server closes

    @property
    def url(self) -> str:
        base = self.api.url
        return ("wss" + base[5:] if base.startswith("https") else "ws" + base[4:]) + "/events/in"

    async def send(self, texts: list[str]) -> None:
        """Send events (Prefect's JSON texts) and wait until the server has them all. Raises
        `PrefectError` (one line) and drops the socket on any failure."""
        try:
            socket = await self._connected()
            stream = socket.protocol.stream if socket.protocol is not None else None
            if stream is None:
                raise WebSocketClosedError()
            # One write for the whole batch: `write_message` would make a task, a write and a
            # send(2) of each event, which cost the receiver beside it ~50 µs per event.
            await stream.write(client_frames(texts))
            await self._confirm(socket)
        except PrefectError:
            self.close()
            raise
        except TimeoutError:
            self.close()
            raise self.timed_out() from None
        except (WebSocketClosedError, StreamClosedError, OSError) as exc:
            self.close()
            reason = f": {exc}" if str(exc) else ""
            raise PrefectError(
                0, f"lost the connection to Prefect at {self.api.url}{reason}"
            ) from None

    def timed_out(self) -> PrefectError:
        return PrefectError(0, f"Prefect at {self.api.url} timed out after {self.timeout:g} s")

    async def aclose(self) -> None:
        """Close the socket and wait (a moment) until the server has closed its side too."""
        socket, closed = self._socket, self._closed
        self._closed = None
        self.close()
        if socket is not None and closed is not None and not closed.done():
            with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(closed, 2.0)
        if socket is not None and socket.protocol is not None:
            socket.protocol._abort()  # whatever is left of the connection, now

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None
        if self._closed is not None:
            self._closed.cancel()
            self._closed = None
        for waiting in self._pongs.values():
            waiting.cancel()
        self._pongs.clear()

    async def _connected(self) -> WebSocketClientConnection:
        if self._socket is not None:
            return self._socket
        credentials = self.api.credentials
        headers = {}
        authorization = credentials.authorization()
        if authorization is not None:
            headers["Authorization"] = authorization
        request = HTTPRequest(
            self.url,
            headers=headers,
            connect_timeout=self.timeout,
            request_timeout=self.timeout,
        )
        cloud = credentials.api_key is not None  # Cloud: the header only, no auth message
        try:
            socket = await websocket_connect(
                request,
                subprotocols=None if cloud else ["prefect"],
                on_message_callback=None,
            )
        except HTTPTimeoutError:
            raise self.timed_out() from None
        except HTTPClientError as exc:
            if exc.code == 599:  # Tornado's code for a connection that ended with no answer
                raise PrefectError(
                    0, f"lost the connection to Prefect at {self.api.url}: {exc.message}"
                ) from None
            raise self.api.refusal(exc.code, b"", "GET", self.url) from None
        except WebSocketError:  # an ordinary answer where the websocket should open
            raise PrefectError(
                404,
                f"not a Prefect API: {self.api.url} answered the request to open its event "
                "socket (/events/in) with an ordinary page; give the API URL, e.g. "
                "http://127.0.0.1:4200/api",
                retry=False,
            ) from None
        except OSError as exc:
            raise PrefectError(0, f"cannot reach Prefect at {self.api.url}: {exc}") from None
        # Pongs answer the checkpoints of `_confirm`.
        socket.on_pong = self._pong  # type: ignore[method-assign]
        if not cloud:
            token = credentials.auth_string
            await socket.write_message(json.dumps({"type": "auth", "token": token}))
            answer = await asyncio.wait_for(socket.read_message(), self.timeout)
            reply: Any = _json(answer)
            if not isinstance(reply, dict) or reply.get("type") != "auth_success":
                reason = socket.close_reason or (reply or {}).get("reason")
                socket.close()
                raise PrefectError(
                    401,
                    f"Prefect at {self.api.url} refused the credentials on its event socket"
                    + (f" ({reason})" if reason else "")
                    + ": set PREFECT_API_AUTH_STRING (user:password) or PREFECT_API_KEY",
                )
        # The server sends nothing more on this socket: a read ends only when it closes.
        self._closed = asyncio.ensure_future(socket.read_message())
        self._socket = socket
        return socket

    def _pong(self, data: bytes) -> None:
        waiting = self._pongs.pop(data, None)
        if waiting is not None and not waiting.done():
            waiting.set_result(None)

    async def _confirm(self, socket: WebSocketClientConnection) -> None:
        self._pings += 1
        key = str(self._pings).encode()
        waiting: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pongs[key] = waiting
        socket.ping(key)
        assert self._closed is not None
        done, _ = await asyncio.wait(
            {waiting, self._closed},
            timeout=self.timeout,
            return_when=asyncio.FIRST_COMPLETED,
        )
        if waiting in done:
            return
        if self._closed in done:
            reason = socket.close_reason or "it closed the connection"
            raise PrefectError(0, f"Prefect at {self.api.url} did not take the events: {reason}")
        raise self.timed_out()


def _json(message: str | bytes | None) -> Any:
    if message is None:
        return None
    try:
        return json.loads(message)
    except ValueError:
        return None


def client_frames(texts: Sequence[str]) -> bytes:
    """Websocket text frames of `texts`, masked as a client's must be (RFC 6455 section 5),
    each with a fresh random mask, joined for one write.

    >>> len(client_frames(["{}", "x" * 200]))  # 2+4+2 bytes, then 2+2+4+200
    216
    """
    masks = os.urandom(4 * len(texts))
    parts: list[bytes] = []
    for index, text in enumerate(texts):
        data = text.encode()
        mask = masks[4 * index : 4 * index + 4]
        size = len(data)
        if size < 126:
            head = struct.pack("!BB", 0x81, 0x80 | size)
        elif size <= 0xFFFF:
            head = struct.pack("!BBH", 0x81, 0x80 | 126, size)
        else:
            head = struct.pack("!BBQ", 0x81, 0x80 | 127, size)
        parts += (head, mask, _masked(mask, data))
    return b"".join(parts)


def _masked_by_int(mask: bytes, data: bytes) -> bytes:
    """`data` XOR the mask repeated, as one big-integer operation."""
    size = len(data)
    key = int.from_bytes((mask * (size // 4 + 1))[:size], "big")
    return (int.from_bytes(data, "big") ^ key).to_bytes(size, "big")


try:  # Tornado's C masking, ten times quicker, where its wheel has it
    from tornado.speedups import websocket_mask as _masked
except ImportError:  # pragma: no cover (a Tornado built without its C extension)
    _masked = _masked_by_int
