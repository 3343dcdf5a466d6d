"""Send a real HTTP request from a notebook without blocking the kernel's loop, and stop the
blocking kind from hanging silently when it targets the kernel's own receiver."""

from __future__ import annotations

import asyncio
import errno
import json as jsonlib
import sys
import weakref
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode, urlsplit

from hooklab.core.outcome import Outcome
from hooklab.core.webhooks import Webhook

if TYPE_CHECKING:
    from hooklab.server import Receiver

BLOCKING_HINT = (
    "hooklab's receiver runs on this kernel's event loop, so a blocking request to it from a "
    "cell would hang until it times out; use `await hooklab.send(url, ...)` instead"
)
LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost", "0.0.0.0", "::"})


@dataclass(frozen=True)
class Sent:
    """The answer to `send`: status and body text, and the outcome the request produced when
    the receiver runs in this process (None otherwise)."""

    status: int
    body: str
    outcome: Outcome | None = field(default=None, repr=False)

    @property
    def event(self) -> Any:
        """The first event the request produced, if the receiver is local."""
        return self.outcome.event if self.outcome else None

    @property
    def error(self) -> str | None:
        """Why the request made no event, if it failed and the receiver is local."""
        return self.outcome.error if self.outcome else None

    def __repr__(self) -> str:
        # The reason first: a failure's repr says why, not only that it failed.
        shown = f"Sent(status={self.status}"
        if self.error:
            shown += f", error={self.error!r}"
        if self.body and self.body.strip() != self.error:  # (a verbose receiver sends it)
            shown += f", body={self.body!r}"
        if self.outcome is not None and self.outcome.events:
            shown += f", event={self.outcome.events[0].event!r}"
        return shown + ")"


class BlockingCallError(ConnectionRefusedError):
    """A blocking HTTP client in a cell tried to reach the receiver on the same kernel."""

    def __init__(self) -> None:
        super().__init__(errno.ECONNREFUSED, BLOCKING_HINT)


# Receivers serving in this process, watched by `send` and guarded against blocking clients.
_local: list[Receiver] = []
_guard_installed = False


def watch(receiver: Receiver) -> None:
    """Let `send` report outcomes from this receiver, and fail fast on blocking calls to it
    from the loop's own thread. The magics call it when they start their receiver."""
    global _guard_installed
    if receiver not in _local:
        _local.append(receiver)
    if not _guard_installed:
        # An audit hook cannot be removed; it stays cheap by returning at once for any event
        # but a socket connection, and it only acts on receivers still in `_local`.
        sys.addaudithook(_refuse_blocking_self_calls)
        _guard_installed = True


def unwatch(receiver: Receiver) -> None:
    if receiver in _local:
        _local.remove(receiver)


def _refuse_blocking_self_calls(event: str, args: tuple[Any, ...]) -> None:
    if event != "socket.connect" or not _local:
        return
    sock, address = args
    if not isinstance(address, tuple) or len(address) < 2:
        return
    # Async clients connect non-blocking sockets; requests, urllib and http.client do not.
    if sock.gettimeout() == 0.0 or not _loop_runs_here():
        return
    host, port = address[0], address[1]
    for receiver in _local:
        if receiver.running and receiver.port == port and _same_host(receiver.host, host):
            raise BlockingCallError()


def _loop_runs_here() -> bool:
    """True while this thread runs an event loop (a cell runs inside the kernel's loop): then
    the receiver on that loop cannot answer until the blocking call gives up."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def _same_host(bound: str, target: str) -> bool:
    if bound in {"0.0.0.0", "::", ""}:
        return True
    return bound == target or (bound in LOOPBACK and target in LOOPBACK)


def local_receiver() -> Receiver | None:
    """The receiver most recently started in this process by the magics, if it still runs."""
    running = [receiver for receiver in _local if receiver.running]
    return running[-1] if running else None


def _receiver_for(url: str) -> Receiver | None:
    parts = urlsplit(url)
    for receiver in _local:
        if (
            receiver.running
            and receiver.port == parts.port
            and _same_host(receiver.host, parts.hostname or "")
        ):
            return receiver
    return None


def _resolve_url(url_or_webhook: str | Webhook) -> str:
    if isinstance(url_or_webhook, str):
        return url_or_webhook
    if isinstance(url_or_webhook, Webhook):
        receiver = local_receiver()
        if receiver is None:
            raise RuntimeError(
                "No hooklab receiver is running in this kernel: `%hooklab serve`, or pass a URL"
            )
        return receiver.webhook_url(url_or_webhook)
    raise TypeError("send() needs a URL or a Webhook")


def _encode(
    json: Any, form: Any, body: bytes | str | None, headers: dict[str, str]
) -> bytes | None:
    names = {name.lower() for name in headers}
    if json is not None:
        if "content-type" not in names:
            headers["Content-Type"] = "application/json"
        return jsonlib.dumps(json).encode()
    if form is not None:
        if "content-type" not in names:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        return urlencode(form).encode()
    if body is None:
        return None
    return body.encode() if isinstance(body, str) else body


async def send(
    url_or_webhook: str | Webhook,
    method: str = "POST",
    json: Any = None,
    form: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
    body: bytes | str | None = None,
    *,
    timeout: float = 30.0,
) -> Sent:
    """Send a real HTTP request without blocking the loop, so the receiver in this kernel can
    answer it. Returns the status, the body, and (for that receiver) the outcome it produced.

    >>> sent = await hooklab.send(url, form={"model": "recs"})  # doctest: +SKIP
    >>> sent.status, sent.event.event                           # doctest: +SKIP
    (204, 'model-update')
    """
    from tornado.httpclient import AsyncHTTPClient, HTTPRequest

    url = _resolve_url(url_or_webhook)
    method = method.upper()
    sent_headers = dict(headers or {})
    data = _encode(json, form, body, sent_headers)
    if data is None and method in {"POST", "PUT", "PATCH"}:
        data = b""
    receiver = _receiver_for(url)
    waiter = _OutcomeWaiter(method, urlsplit(url).path, data or b"") if receiver else None
    if receiver is not None and waiter is not None:
        receiver.add_listener(waiter)
    try:
        request = HTTPRequest(
            url,
            method=method,
            headers=sent_headers,
            body=data,
            request_timeout=timeout,
            follow_redirects=False,
            allow_nonstandard_methods=True,
            decompress_response=True,
        )
        try:
            # raise_error=False: a 400 or 404 is an answer to show, not an exception.
            response = await AsyncHTTPClient().fetch(request, raise_error=False)
        except OSError as exc:
            raise ConnectionError(f"Could not reach {url}: {exc}") from None
        if response.code == 599:
            raise ConnectionError(f"Could not reach {url}: {response.error}")
        # The receiver hands its listeners the outcome before the answer leaves, so the wait
        # is short; a 503 (the store refused it) has no outcome to wait for.
        stored = waiter is not None and response.code != 503
        outcome = await waiter.result(timeout) if stored and waiter is not None else None
        text = response.body.decode("utf-8", errors="replace") if response.body else ""
        return Sent(response.code, text, outcome)
    finally:
        if receiver is not None and waiter is not None:
            receiver.remove_listener(waiter)


# Outcomes already matched to a send, by id; an entry goes when its outcome is collected.
_claimed: weakref.WeakValueDictionary[int, Outcome] = weakref.WeakValueDictionary()


class _OutcomeWaiter:
    """A receiver listener that picks out the outcome of the request `send` made.

    Outcomes are matched on method, path and body: two identical sends in flight may swap
    outcomes, which are then alike but for ids and times.
    """

    def __init__(self, method: str, path: str, body: bytes) -> None:
        self.method = method
        self.path = path
        self.body = body
        self.future: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()

    def __call__(self, outcome: Outcome) -> None:
        request = outcome.request
        if self.future.done() or request is None or id(outcome) in _claimed:
            return
        if (request.method, request.path, request.body) == (self.method, self.path, self.body):
            _claimed[id(outcome)] = outcome
            self.future.set_result(outcome)

    async def result(self, timeout: float) -> Outcome | None:
        try:
            return await asyncio.wait_for(asyncio.shield(self.future), timeout)
        except asyncio.TimeoutError:
            return None
