"""How the receiver reads each request: `/hooks/<slug>` to a lean delegate, the rest to the app.

A hook request never becomes a Tornado `HTTPServerRequest`, which parses more than a hook
needs; it goes through `Workspace.process` and is answered only after its outcome commits.
"""

from __future__ import annotations

import logging
import re
import socket
from asyncio import Future
from collections.abc import Awaitable, Callable
from typing import Protocol

from tornado import httputil
from tornado.http1connection import HTTP1Connection
from tornado.iostream import StreamClosedError
from tornado.web import Application

from hooklab.core.outcome import Outcome, Reason
from hooklab.core.request import HookRequest
from hooklab.server.connections import (
    EarlyAnswer,
    IdleConnections,
    headers_too_large,
    http_date,
    remote_ip,
    start_line,
)
from hooklab.store.groupcommit import GroupCommit
from hooklab.workspace import Workspace


class HookReceiver(Protocol):
    """What the delegates use of `hooklab.server.receiver.HookReceiver`."""

    workspace: Workspace
    max_body: int
    verbose: bool
    in_progress: set[HookDelegate]
    commits: GroupCommit
    on_answer: Callable[[int, Outcome | None], object] | None

    def early_answer(
        self, method: str, path: str, headers: httputil.HTTPHeaders
    ) -> EarlyAnswer | None: ...
    def body_too_large(self, path: str) -> EarlyAnswer: ...
    def first_in_this_turn(self) -> bool: ...
    def store_failed(self, error: Exception) -> None: ...
    def notify(self, outcome: Outcome) -> None: ...


log = logging.getLogger("hooklab.server.receiver")

RETRY_AFTER_SECONDS = 5  # what a 503 asks a sender to wait before it tries again


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
        self.ended = False  # the whole body has been read
        self.draining = False  # answered 413 while the body still comes (`_close_after`)
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
            # Answer at once: the body is never kept, and the connection closes after the answer.
            # Past Tornado's own limit, Tornado would answer a bare 400 before this answer is
            # committed; let it wait for the body instead (what comes is dropped, unkept).
            if isinstance(self.connection, HTTP1Connection):
                self.connection.set_max_body_size(int(declared))
            self.too_large = True
            self.answer()

    def data_received(self, chunk: bytes) -> None:
        if self.too_large:
            return
        self.size += len(chunk)
        if self.size > self.receiver.max_body:
            # A body of no declared length (chunked) is answered as soon as it is too large,
            # not when it ends, and its connection is closed after the answer (`_close_after`).
            self.too_large = True
            self.chunks.clear()
            self.answer()
        else:
            self.chunks.append(chunk)

    def finish(self) -> None:
        self.ended = True
        if self.draining:  # the rest of the body came, and was dropped
            assert isinstance(self.connection, HTTP1Connection)
            _hang_up(self.connection)
        elif not self.answered:
            self.answer()

    def on_connection_close(self) -> None:
        self.receiver.in_progress.discard(self)

    def _close_after(self, written: Future[None], connection: HTTP1Connection) -> None:
        """End the connection of a chunked body answered 413: nothing after it is read as a
        request (its sender was told the connection closes).

        A body that has ended is closed on once the answer is out. One still coming is
        drained, as web servers do: our side is ended once the answer is out, and up to
        `max_body` more bytes of the body are read and dropped before the connection closes
        (or the idle timeout closes it). Closing at once, with the sender's bytes unread,
        would reset the connection, and a sender on a real network could lose the answer.
        Tornado's bare 400 at the new limit goes nowhere, our side being ended."""
        if self.ended:
            written.add_done_callback(lambda _: _hang_up(connection))
            return
        self.draining = True
        connection.set_max_body_size(self.size + self.receiver.max_body)
        if connection.stream.writing():
            written.add_done_callback(lambda _: _end_writing(connection))
        else:
            _end_writing(connection)

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
        if self.receiver.on_answer is not None:
            try:
                self.receiver.on_answer(status, self.outcome)
            except Exception:  # a bug in counting never costs a sender its answer
                log.exception("hooklab could not count an answer")
        connection = self.connection
        streamed_too_large = (
            self.too_large
            and "Content-Length" not in self.headers
            and isinstance(connection, HTTP1Connection)
        )
        if streamed_too_large:
            headers["Connection"] = "close"
        try:
            written = connection.write_headers(start_line(status), headers, body or None)
            if streamed_too_large:
                assert isinstance(connection, HTTP1Connection)
                self._close_after(written, connection)
            else:
                connection.finish()
        except StreamClosedError:
            pass  # the sender left; what it sent is stored all the same
        finally:
            self.receiver.in_progress.discard(self)


def _hang_up(connection: HTTP1Connection) -> None:
    """Close `connection` and read no further request from it. (Tornado's own close would
    still serve a request the sender pipelined, from what it has read ahead; taking the stream
    from it ends its reading of requests on this connection.)"""
    if connection.stream is not None:
        connection.detach().close()


def _end_writing(connection: HTTP1Connection) -> None:
    """Send the end of our side of `connection` (its answer is whole); keep reading it."""
    stream = connection.stream
    if stream.closed():
        return
    try:
        stream.socket.shutdown(socket.SHUT_WR)
    except OSError:  # the sender has gone already
        stream.close()
