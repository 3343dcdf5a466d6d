"""The receiver: `/hooks/<slug>` served by Tornado on the running event loop.

Inside a Jupyter kernel it serves on the kernel's own loop (no thread, no `IOLoop.start()`).
Each request becomes a `HookRequest`, goes through `Workspace.process`, and is answered only
after it and its outcome are committed (SPEC 2). Commits of concurrent requests are grouped.

`HookReceiver.routes()` gives the Tornado rules served beside the hooks; it knows no other part
of the server. `hooklab.server.app.Receiver` mounts the management API there.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import re
import socket
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypedDict

from tornado import httputil
from tornado.httpserver import HTTPServer
from tornado.ioloop import PeriodicCallback
from tornado.iostream import StreamClosedError
from tornado.web import Application, RequestHandler

from hooklab.core.outcome import Outcome, Reason
from hooklab.core.request import HookRequest
from hooklab.core.webhooks import Webhook
from hooklab.server.connections import (
    DEFAULT_IDLE_TIMEOUT,
    READ_HEADER_BYTES,
    ConnectionLimit,
    CountedHTTPServer,
    EarlyAnswer,
    IdleConnections,
    QuietNotFound,
    headers_too_large,
    http_date,
    no_access_log,
    remote_ip,
    start_line,
)
from hooklab.store.groupcommit import BackgroundCheckpoint, GroupCommit
from hooklab.workspace import Workspace

if TYPE_CHECKING:
    from typing_extensions import Self  # typing.Self from Python 3.11

log = logging.getLogger(__name__)

DEFAULT_MAX_BODY = 1_500_000
RETRY_AFTER_SECONDS = 5  # what a 503 asks a sender to wait before it tries again
Listener = Callable[[Outcome], object]
# A Tornado rule: a path pattern, its handler class and the handler's `initialize` arguments.
Rule = tuple[str, type[RequestHandler], dict[str, Any]]


class ReceiverOptions(TypedDict, total=False):
    """The keyword arguments of `HookReceiver`, for the servers built on it to pass along."""

    host: str
    port: int
    verbose: bool
    max_body: int
    idle_timeout: float


class ReceiverError(RuntimeError):
    """The receiver cannot start."""


class NoRunningLoop(ReceiverError):
    """`start()` was called with no event loop running (outside a notebook or async code)."""


class PortInUse(ReceiverError):
    """Another process already listens on the requested port."""


class CannotListen(ReceiverError):
    """The socket cannot be opened for another reason (a bad host, no permission)."""


class HookReceiver:
    """Serves a workspace's webhooks over HTTP on the running loop, and `routes()` beside them."""

    def __init__(
        self,
        workspace: Workspace,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        verbose: bool = False,
        max_body: int = DEFAULT_MAX_BODY,
        idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
    ) -> None:
        self.workspace = workspace
        self.host = host
        self.requested_port = port
        self.verbose = verbose
        self.max_body = max_body
        # Connections that keep the receiver waiting this long are closed (see `connections`).
        self.connections = IdleConnections(idle_timeout)
        self.port: int | None = None
        self._server: HTTPServer | None = None
        self._accepting: ConnectionLimit | None = None
        self._listeners: list[Listener] = []
        # Why requests could not be stored, each cause once with how often: for the person
        # (`on_store_error(cause)` when an episode of failures starts, `on_store_recovered(n)`
        # when it ends with n refused) and `hooklab serve`'s last lines.
        self.store_errors: dict[str, int] = {}
        self.on_store_error: Callable[[str], object] | None = None
        self.on_store_recovered: Callable[[int], object] | None = None
        self._refused_in_a_row = 0
        self.in_progress: set[HookDelegate] = set()
        self._closing: asyncio.Future[None] | None = None
        self._checked_this_turn = False
        self._checkpoints: BackgroundCheckpoint | None = None
        self._checkpoint_timer: PeriodicCallback | None = None
        self.commits = GroupCommit(workspace.record, on_written=self._written)

    def __repr__(self) -> str:
        state = self.url if self.running else "stopped"
        return f"<hooklab {type(self).__name__} {state} for {self.workspace.path}>"

    @property
    def running(self) -> bool:
        return self._server is not None

    @property
    def url(self) -> str:
        """The base URL, without a trailing slash."""
        if self.port is None:
            raise ReceiverError("The receiver is not running: call .start() first")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def webhook_url(self, hook_or_slug: Webhook | str) -> str:
        slug = hook_or_slug.slug if isinstance(hook_or_slug, Webhook) else hook_or_slug
        return f"{self.url}/hooks/{slug}"

    def start(self) -> Self:
        """Bind and serve on the event loop that is already running. Idempotent."""
        if self._server is not None:
            return self
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            raise NoRunningLoop(
                "Receiver.start() needs a running event loop: call it from a notebook cell "
                "or async code, or run `hooklab serve`"
            ) from None
        try:
            # The stdlib closes the socket when binding fails (tornado's bind_sockets leaks it).
            listener = socket.create_server(
                (self.host, self.requested_port), family=_family(self.host), backlog=1024
            )
        except OSError as exc:
            where = f"{self.host}:{self.requested_port}"
            if exc.errno == errno.EADDRINUSE:
                raise PortInUse(f"Cannot listen on {where}: address already in use") from None
            raise CannotListen(f"Cannot listen on {where}: {exc.strerror or exc}") from None
        listener.setblocking(False)
        server = CountedHTTPServer(
            ReceiverRouter(self, self.application(), self.connections),
            # Bodies are streamed and counted by the hook handler, which keeps at most
            # `max_body` bytes; this only stops a sender that never ends its chunked body.
            max_body_size=max(self.max_body * 64, 100_000_000),
            max_header_size=READ_HEADER_BYTES,  # so that more than ours is a 431, not a drop
        )
        if self.workspace.path != ":memory:":
            self._checkpoints = BackgroundCheckpoint(self.workspace.store)
            self._checkpoint_timer = PeriodicCallback(self._checkpoints.start, 5000)
            self._checkpoint_timer.start()
        self.connections.attach(server)
        # Accepting stays below the file limit (and never spins when files run out).
        self._accepting = ConnectionLimit(server, self.connections).listen(listener)
        self._server = server
        self.port = int(listener.getsockname()[1])
        return self

    def _written(self, count: int) -> None:
        refused, self._refused_in_a_row = self._refused_in_a_row, 0
        if refused and self.on_store_recovered is not None:
            self.on_store_recovered(refused)
        if self._checkpoints is not None:
            self._checkpoints.written(count)

    def routes(self) -> list[Rule]:
        """Tornado rules for the paths other than `/hooks/<slug>`; none here (those 404)."""
        return []

    def early_answer(
        self, method: str, path: str, headers: httputil.HTTPHeaders
    ) -> EarlyAnswer | None:
        """For a request to one of `routes()`, an answer to give as its headers arrive, so that
        its body is never read; None lets it go on (its body counted up to `max_body`)."""
        return None

    def body_too_large(self, path: str) -> EarlyAnswer:
        """The answer to a request to one of `routes()` whose body passes `max_body`."""
        return EarlyAnswer(413)

    def application(self) -> Application:
        return Application(
            self.routes(),
            default_handler_class=QuietNotFound,
            compress_response=False,
            log_function=no_access_log,
        )

    def stop(self) -> None:
        """Stop listening, write what is pending, and close open connections. Idempotent."""
        server, self._server = self._server, None
        if server is None:
            return
        server.stop()
        if self._accepting is not None:
            self._accepting.close()
            self._accepting = None
        self.connections.stop()
        self.commits.flush()
        if self._checkpoint_timer is not None:
            self._checkpoint_timer.stop()
            self._checkpoint_timer = None
        if self._checkpoints is not None:
            self._checkpoints.close()
            self._checkpoints = None
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return
        # Requests already committed still get their answer before the connections close.
        self._closing = asyncio.ensure_future(_close_after_answers(self, server))

    async def shutdown(self, timeout: float = 5.0) -> None:
        """Stop, and wait until the requests in progress are answered (for `hooklab serve`)."""
        server = self._server
        self.stop()
        if server is not None:
            await _close_after_answers(self, server, timeout)

    def first_in_this_turn(self) -> bool:
        """True once per turn of the event loop: when to look for other processes' changes."""
        if self._checked_this_turn:
            return False
        self._checked_this_turn = True
        asyncio.get_running_loop().call_soon(self._new_turn)
        return True

    def _new_turn(self) -> None:
        self._checked_this_turn = False

    # Listeners

    def add_listener(self, callback: Listener) -> None:
        """Call `callback(outcome)` on the loop after each request is committed (404s too)."""
        self._listeners.append(callback)

    def remove_listener(self, callback: Listener) -> None:
        if callback in self._listeners:
            self._listeners.remove(callback)

    def store_failed(self, error: Exception) -> None:
        """Count a request the store refused; tell `on_store_error` of the first of a run."""
        cause = f"{type(error).__name__}: {error}"
        self.store_errors[cause] = self.store_errors.get(cause, 0) + 1
        self._refused_in_a_row += 1
        if self._refused_in_a_row == 1 and self.on_store_error is not None:
            try:
                self.on_store_error(cause)
            except Exception:
                log.exception("hooklab could not report a storage error")

    def notify(self, outcome: Outcome) -> None:
        for callback in list(self._listeners):
            try:
                callback(outcome)
            except Exception:
                log.exception("A hooklab receiver listener failed; it is ignored")


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


async def _close_after_answers(
    receiver: HookReceiver, server: HTTPServer, timeout: float = 2.0
) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while receiver.in_progress and loop.time() < deadline:
        await asyncio.sleep(0.01)
    await server.close_all_connections()


class ReceiverRouter(httputil.HTTPServerConnectionDelegate):
    """`/hooks/<slug>` to a lean message delegate (the hot path); everything else to the app."""

    def __init__(
        self, receiver: HookReceiver, app: Application, connections: IdleConnections
    ) -> None:
        self.receiver = receiver
        self.app = app
        self.connections = connections

    def start_request(
        self, server_conn: object, request_conn: httputil.HTTPConnection
    ) -> httputil.HTTPMessageDelegate:
        self.connections.waiting(server_conn)
        return _Dispatch(self, server_conn, request_conn)


class _Dispatch(httputil.HTTPMessageDelegate):
    """Chooses the delegate of one request from its start line. A hook request never becomes
    a Tornado `HTTPServerRequest` (which parses more than a hook needs); one without a Host
    header goes the app's way, to get Tornado's own 400. A request to the app may be answered
    as soon as its headers arrive (`HookReceiver.early_answer`), and its body is counted: past
    `max_body` it is answered 413 and the rest is never kept."""

    def __init__(
        self, router: ReceiverRouter, server_conn: object, request_conn: httputil.HTTPConnection
    ) -> None:
        self.router = router
        self.server_conn = server_conn
        self.request_conn = request_conn
        self.delegate: httputil.HTTPMessageDelegate | None = None
        self.path = ""  # of a request to the app, whose body is counted here
        self.answered = False
        self.size = 0

    def headers_received(
        self,
        start_line: httputil.RequestStartLine | httputil.ResponseStartLine,
        headers: httputil.HTTPHeaders,
    ) -> Awaitable[None] | None:
        assert isinstance(start_line, httputil.RequestStartLine)
        path, _, query = start_line.path.partition("?")
        if headers_too_large(headers):
            self.answer_now(EarlyAnswer(431))
            return None
        match = _HOOK_PATH.fullmatch(path)
        if match is None or ("Host" not in headers and start_line.version != "HTTP/1.0"):
            early = self.router.receiver.early_answer(start_line.method, path, headers)
            if early is not None:
                self.answer_now(early)
                return None
            self.path = path
            self.delegate = self.router.app.start_request(self.server_conn, self.request_conn)
        else:
            self.delegate = HookDelegate(
                self.router.receiver, start_line.method, path, query, headers,
                self.request_conn, match.group(1),
            )  # fmt: skip
        return self.delegate.headers_received(start_line, headers)

    def data_received(self, chunk: bytes) -> Awaitable[None] | None:
        if self.answered:
            return None  # answered already: what is still coming is not kept
        assert self.delegate is not None
        if self.path:
            self.size += len(chunk)
            if self.size > self.router.receiver.max_body:
                self.answer_now(self.router.receiver.body_too_large(self.path))
                return None
        return self.delegate.data_received(chunk)

    def finish(self) -> None:
        self.router.connections.arrived(self.server_conn)
        if self.answered:
            return
        assert self.delegate is not None
        self.delegate.finish()

    def answer_now(self, early: EarlyAnswer) -> None:
        self.answered = True
        early.write(self.request_conn)

    def on_connection_close(self) -> None:
        if self.delegate is not None:
            self.delegate.on_connection_close()


_HOOK_PATH = re.compile(r"/hooks/([^/]+)/?")
_HOOK_METHODS = frozenset({"GET", "HEAD", "DELETE", "POST", "PUT", "PATCH"})


class HookDelegate(httputil.HTTPMessageDelegate):
    """One request to `/hooks/<slug>`: bytes in, a status out; the Workspace does the rest.

    A Tornado `RequestHandler` would cost about as much per request as the whole pipeline, so
    this talks to the HTTP connection directly. Bodies are counted as they stream in and at most
    `max_body` bytes are kept.
    """

    def __init__(
        self,
        receiver: HookReceiver,
        method: str,
        path: str,
        query: str,
        headers: httputil.HTTPHeaders,
        connection: httputil.HTTPConnection,
        slug: str,
    ) -> None:
        self.receiver = receiver
        self.method = method
        self.path = path
        self.query = query
        self.headers = headers
        self.connection = connection
        self.slug = slug
        self.chunks: list[bytes] = []
        self.size = 0
        self.too_large = False
        self.answered = False
        self.outcome: Outcome | None = None

    def headers_received(
        self,
        start_line: httputil.RequestStartLine | httputil.ResponseStartLine,
        headers: httputil.HTTPHeaders,
    ) -> None:
        self.receiver.in_progress.add(self)
        if self.method not in _HOOK_METHODS:
            self.reply(405, "")
            return
        declared = headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > self.receiver.max_body:
            # Answer at once: the body is never read, and the connection closes after the answer.
            self.too_large = True
            self.answer()

    def data_received(self, chunk: bytes) -> None:
        if self.too_large:
            return
        self.size += len(chunk)
        if self.size > self.receiver.max_body:
            self.too_large = True
            self.chunks.clear()
        else:
            self.chunks.append(chunk)

    def finish(self) -> None:
        if not self.answered:
            self.answer()

    def on_connection_close(self) -> None:
        self.receiver.in_progress.discard(self)

    def answer(self) -> None:
        self.answered = True
        receiver = self.receiver
        workspace = receiver.workspace
        try:
            request = HookRequest(
                method=self.method,
                path=self.path,
                query=self.query,
                headers=tuple(self.headers.get_all()),
                body=b"" if self.too_large else b"".join(self.chunks),
                received=workspace.clock(),
                client=remote_ip(self.connection),
                # Time-ordered ids keep the store's indexes appending at one end.
                id=str(workspace.new_id()),
            )
            outcome = workspace.process(
                self.slug,
                request,
                too_large=receiver.max_body if self.too_large else None,
                check_other_writers=receiver.first_in_this_turn(),
            )
        except Exception as exc:  # a bug, or the file failing while the webhook was read
            log.exception("hooklab could not process a request to /hooks/%s", self.slug)
            self.reply(503, "", retry_after=RETRY_AFTER_SECONDS)
            self.receiver.store_failed(exc)
            return
        self.outcome = outcome
        if outcome.reason is Reason.NOT_FOUND:
            self.done(None)
            return
        receiver.commits.commit_then(outcome, self.done)

    def done(self, error: Exception | None) -> None:
        """Answer once the outcome is durable. A request the store could not write is a 503
        with Retry-After, never a 204: the sender keeps it and tries again (SPEC 12)."""
        if error is not None:
            self.reply(503, "", retry_after=RETRY_AFTER_SECONDS)
            self.receiver.store_failed(error)
            return
        outcome = self.outcome
        assert outcome is not None  # set by answer() before anything is committed
        text = outcome.error if self.receiver.verbose and outcome.error else ""
        self.reply(outcome.status, text)
        self.receiver.notify(outcome)

    def reply(self, status: int, text: str, *, retry_after: int | None = None) -> None:
        headers = httputil.HTTPHeaders({"Date": http_date()})
        if retry_after is not None:
            headers["Retry-After"] = str(retry_after)
        body = b""
        if status != 204:
            body = (text + "\n").encode() if text else b""
            headers["Content-Length"] = str(len(body))
            if body:
                headers["Content-Type"] = "text/plain; charset=utf-8"
        if self.method == "HEAD":
            body = b""
        try:
            self.connection.write_headers(start_line(status), headers, body or None)
            self.connection.finish()
        except StreamClosedError:
            pass  # the sender left; what it sent is stored all the same
        finally:
            self.receiver.in_progress.discard(self)
