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
import socket
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, TypedDict

from tornado import httputil
from tornado.httpserver import HTTPServer
from tornado.ioloop import PeriodicCallback
from tornado.web import Application, RequestHandler

from hooklab.core.errors import StoreError
from hooklab.core.outcome import Outcome
from hooklab.core.webhooks import Webhook
from hooklab.server.connections import (
    DEFAULT_IDLE_TIMEOUT,
    READ_HEADER_BYTES,
    ConnectionLimit,
    CountedHTTPServer,
    EarlyAnswer,
    IdleConnections,
    QuietNotFound,
    no_access_log,
)
from hooklab.server.delegates import RETRY_AFTER_SECONDS, HookDelegate, ReceiverRouter
from hooklab.store.contract import Writer
from hooklab.store.groupcommit import GroupCommit
from hooklab.workspace import Workspace

if TYPE_CHECKING:
    from typing_extensions import Self  # typing.Self from Python 3.11

log = logging.getLogger(__name__)

DEFAULT_MAX_BODY = 1_500_000
__all__ = ["RETRY_AFTER_SECONDS", "HookDelegate", "HookReceiver", "ReceiverRouter"]
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
        # For metrics (`hooklab.server.metrics`): each answer to /hooks with its status and
        # outcome (None when none was made), and how long each batch took to commit.
        self.on_answer: Callable[[int, Outcome | None], object] | None = None
        self.on_committed: Callable[[float], object] | None = None
        self._refused_in_a_row = 0
        self.in_progress: set[HookDelegate] = set()
        self._closing: asyncio.Future[None] | None = None
        self._checked_this_turn = False
        self.writer: Writer | None = None  # made by start(): how this server writes
        self._upkeep: PeriodicCallback | None = None
        self.commits = GroupCommit(self._write, on_written=self._written)

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
        self.writer = self.workspace.writer()
        self.commits.parallel = self.writer.parallel
        self._upkeep = PeriodicCallback(self.writer.tick, 5000)
        self._upkeep.start()
        self.connections.attach(server)
        # Accepting stays below the file limit (and never spins when files run out).
        self._accepting = ConnectionLimit(server, self.connections).listen(listener)
        self._server = server
        self.port = int(listener.getsockname()[1])
        return self

    def _write(self, outcomes: Sequence[Outcome]) -> Awaitable[None] | None:
        if self.writer is None:  # not serving: a caller of `commits` outside start()
            self.workspace.record(outcomes)
            return None
        committed = self.on_committed
        if committed is None:
            return self.writer.write(outcomes)
        started = time.perf_counter()
        pending = self.writer.write(outcomes)
        if pending is None:
            committed(time.perf_counter() - started)
            return None
        return _timed(pending, started, committed)

    def _written(self, count: int) -> None:
        refused, self._refused_in_a_row = self._refused_in_a_row, 0
        if refused and self.on_store_recovered is not None:
            self.on_store_recovered(refused)
        if self.writer is not None:
            self.writer.written(count)

    async def ping(self) -> None:
        """Return when the store answers; raise `StoreError` when it does not."""
        writer = self.writer
        if writer is None:
            raise StoreError("the receiver is not serving")
        await writer.ping()

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
        if self._upkeep is not None:
            self._upkeep.stop()
            self._upkeep = None
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            self._close_writer()
            return
        # Requests already committed still get their answer before the connections close.
        self._closing = asyncio.ensure_future(self._finish(server))

    async def _finish(self, server: HTTPServer, timeout: float = 2.0) -> None:
        try:
            await asyncio.wait_for(self.commits.drain(), self.commits.timeout)
        except asyncio.TimeoutError:
            pass  # those requests are answered 503 by the write's own timeout
        finally:
            self._close_writer()
        await _close_after_answers(self, server, timeout)

    def _close_writer(self) -> None:
        if self.writer is not None and not self.commits.busy:
            self.writer.close()
            self.writer = None

    async def shutdown(self, timeout: float = 5.0) -> None:
        """Stop, and wait until the requests in progress are answered (for `hooklab serve`)."""
        server = self._server
        self.stop()
        if server is not None:
            await self._finish(server, timeout)

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
        cause = str(error) if isinstance(error, StoreError) else f"{type(error).__name__}: {error}"
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


async def _timed(
    pending: Awaitable[None], started: float, committed: Callable[[float], object]
) -> None:
    """Await a write, then say how long it took since `started` (a failed one is not timed)."""
    await pending
    committed(time.perf_counter() - started)


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
