"""The receiver's HTTP plumbing: idle connections closed by one sweep, open connections kept
below the file limit, and quiet answers.

Tornado guards each wait for a request with a timer of its own (`idle_connection_timeout`, an
hour unless set), scheduled and cancelled for every request on a keep-alive connection. On the
receiver's hot path that timer cost about a sixth of the whole request (benchmarks/
bench_receiver.py). `IdleConnections` keeps the guard and drops the timers: each connection's
wait is stamped in a table, and one periodic sweep closes those that waited too long.
"""

from __future__ import annotations

import errno
import logging
import os
import socket
import time
from collections.abc import Callable
from email.utils import formatdate
from http import HTTPStatus
from typing import Any, NamedTuple
from weakref import WeakKeyDictionary

from tornado import httputil
from tornado.http1connection import HTTP1ServerConnection
from tornado.httpserver import HTTPServer
from tornado.ioloop import IOLoop, PeriodicCallback
from tornado.iostream import IOStream, StreamClosedError
from tornado.web import RequestHandler

log = logging.getLogger(__name__)

DEFAULT_IDLE_TIMEOUT = 300.0  # seconds a connection may wait between or inside requests
FILES_KEPT = 64  # files kept free of connections: the store's, a forwarder's pipes, logs


class IdleConnections:
    """Closes a connection that keeps the server waiting for `timeout` seconds: idle between
    requests, or sending its headers or body slowly (a slowloris sender). A connection whose
    request has arrived whole is never closed by this, however long its answer takes.

    Each wait starts in `waiting` and ends in `arrived`; `close_idle` runs every quarter of
    the timeout, so a connection is closed between 1 and 1.25 timeouts after its wait began.
    """

    def __init__(self, timeout: float = DEFAULT_IDLE_TIMEOUT) -> None:
        if not timeout > 0:  # (NaN too)
            raise ValueError(f"idle_timeout must be a positive number of seconds, not {timeout}")
        self.timeout = timeout
        # Weak keys: a connection that closes while it waits leaves the table by itself.
        self._waiting: WeakKeyDictionary[HTTP1ServerConnection, float] = WeakKeyDictionary()
        self._sweeper: PeriodicCallback | None = None

    def attach(self, server: HTTPServer) -> None:
        """Take over the idle guard of `server` (whose own per-request timer is switched off)
        and start sweeping on the running loop."""
        server.conn_params.header_timeout = None
        if self._sweeper is None:
            self._sweeper = PeriodicCallback(self._sweep, self.timeout * 1000 / 4)
            self._sweeper.start()

    def stop(self) -> None:
        if self._sweeper is not None:
            self._sweeper.stop()
            self._sweeper = None

    def waiting(self, connection: object) -> None:
        """The server now waits for the next request on `connection`."""
        if isinstance(connection, HTTP1ServerConnection):
            self._waiting[connection] = time.monotonic()

    def arrived(self, connection: object) -> None:
        """The request on `connection` has arrived whole."""
        self._waiting.pop(connection, None)  # type: ignore[call-overload]

    @property
    def count(self) -> int:
        """How many connections the server is waiting on."""
        return len(self._waiting)

    def _sweep(self) -> None:
        self.close_idle()

    def close_oldest(self) -> HTTP1ServerConnection | None:
        """Close the connection that has waited longest; None when none is waiting."""
        if not self._waiting:
            return None
        oldest = min(self._waiting.items(), key=lambda item: item[1])[0]
        self._waiting.pop(oldest, None)
        oldest.stream.close()
        return oldest

    def close_idle(self) -> int:
        """Close every connection that has waited `timeout` seconds or more; returns how many."""
        cutoff = time.monotonic() - self.timeout
        idle = [connection for connection, since in self._waiting.items() if since <= cutoff]
        for connection in idle:
            self._waiting.pop(connection, None)
            connection.stream.close()
        return len(idle)


# Headers: Tornado reads up to READ_HEADER_BYTES and drops a connection that sends more, with
# no answer; below that, a request whose headers pass either limit is answered 431.
MAX_HEADER_BYTES = 65_536
MAX_HEADER_FIELDS = 1_000
READ_HEADER_BYTES = 1_048_576


def headers_too_large(headers: httputil.HTTPHeaders) -> bool:
    """More header fields, or more header bytes, than a sender has reason to send."""
    size = 0
    for fields, (name, value) in enumerate(headers.get_all(), 1):
        size += len(name) + len(value) + 4
        if fields > MAX_HEADER_FIELDS or size > MAX_HEADER_BYTES:
            return True
    return False


class EarlyAnswer(NamedTuple):
    """An answer given as soon as a request's headers arrive, before its body is read; the
    connection closes after it, so the body is never kept."""

    status: int
    body: bytes = b""
    content_type: str = "text/plain; charset=utf-8"

    def write(self, connection: httputil.HTTPConnection) -> None:
        headers = httputil.HTTPHeaders(
            {"Date": http_date(), "Content-Length": str(len(self.body)), "Connection": "close"}
        )
        if self.body:
            headers["Content-Type"] = self.content_type
        try:
            connection.write_headers(start_line(self.status), headers, self.body or None)
            connection.finish()
        except StreamClosedError:
            pass  # the sender left


class CountedHTTPServer(HTTPServer):
    """An HTTPServer that counts the connections it holds open (each holds a file) and says
    when one is gone (`on_released`)."""

    held = 0
    on_released: Callable[[object], None] | None = None

    def handle_stream(self, stream: IOStream, address: tuple[Any, ...]) -> None:
        self.held += 1
        super().handle_stream(stream, address)

    def on_close(self, server_conn: object) -> None:
        super().on_close(server_conn)
        self.held -= 1
        if self.on_released is not None:
            self.on_released(server_conn)


def connection_limit(kept: int = FILES_KEPT) -> int:
    """How many connections this process may hold: its file limit, less the files it has open
    now and `kept` more."""
    try:
        import resource
    except ImportError:  # (Windows: no such limit to stay under)
        return 1 << 20
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return 1 << 20
    try:
        in_use = len(os.listdir("/proc/self/fd"))
    except OSError:
        in_use = kept
    return max(8, soft - in_use - kept)


class ConnectionLimit:
    """Accepts connections for `server` while fewer than `limit` are open. At the limit (or when
    the process runs out of files), the connection that has waited longest for its request is
    closed for each new one, so that senders are still answered; when none waits, accepting
    pauses until one closes. Told once in one log line, until the open ones fall well below.
    (Tornado's own accept loop would spin on EMFILE, logging a traceback each turn.)"""

    def __init__(
        self, server: CountedHTTPServer, idle: IdleConnections, limit: int | None = None
    ) -> None:
        self.server = server
        self.idle = idle
        self.limit = limit if limit is not None else connection_limit()
        self._closing: set[object] = set()  # closed here, not yet released by Tornado
        self._sockets: list[socket.socket] = []
        self._paused = False
        self._told = False
        self._retry: object | None = None
        server.on_released = self._released

    @property
    def open(self) -> int:
        return self.server.held - len(self._closing)

    def listen(self, listener: socket.socket) -> ConnectionLimit:
        self._sockets.append(listener)
        IOLoop.current().add_handler(listener, self._ready, IOLoop.READ)
        return self

    def close(self) -> None:
        """Stop accepting and close the listening sockets."""
        if not self._paused:
            for listener in self._sockets:
                IOLoop.current().remove_handler(listener)
        self._paused = True
        if self._retry is not None:
            IOLoop.current().remove_timeout(self._retry)
            self._retry = None
        for listener in self._sockets:
            listener.close()
        self._sockets.clear()

    def _ready(self, listener: socket.socket, events: int) -> None:
        for _ in range(128):  # at most a backlog's worth a turn, as Tornado does
            if self._paused or (self.open >= self.limit and not self._make_room()):
                return
            try:
                connection, address = listener.accept()
            except BlockingIOError:
                return
            except ConnectionAbortedError:
                continue
            except OSError as exc:  # out of files below the limit: other files hold them
                if exc.errno not in (errno.EMFILE, errno.ENFILE):
                    raise
                if not self._make_room():
                    return
                continue
            stream = IOStream(
                connection,
                max_buffer_size=self.server.max_buffer_size,
                read_chunk_size=self.server.read_chunk_size,
            )
            self.server.handle_stream(stream, address)

    def _make_room(self) -> bool:
        """Close the connection that has waited longest; False (and pause) when none waits."""
        if not self._told:
            self._told = True
            log.warning(
                "hooklab: %d connections are open, the most this process may hold (%d files): "
                "the longest waiting is closed for each new one, or new ones wait",
                self.open,
                self.limit,
            )
        closed = self.idle.close_oldest()
        if closed is not None:
            self._closing.add(closed)
            return True
        self._pause()
        return False

    def _pause(self) -> None:
        if self._paused:
            return
        self._paused = True
        loop = IOLoop.current()
        for listener in self._sockets:
            loop.remove_handler(listener)
        # Room comes when a connection closes (`_released`), or when other files do.
        self._retry = loop.call_later(1.0, self._resume)

    def _resume(self) -> None:
        self._retry = None
        if self._paused and self._sockets:
            self._paused = False
            for listener in self._sockets:
                IOLoop.current().add_handler(listener, self._ready, IOLoop.READ)

    def _released(self, connection: object) -> None:
        self._closing.discard(connection)
        if self._told and self.open <= self.limit * 3 // 4:
            self._told = False  # well below: a next time is told again
        if self._paused and self.open < self.limit:
            if self._retry is not None:
                IOLoop.current().remove_timeout(self._retry)
            self._resume()


class QuietHandler(RequestHandler):
    """Never a traceback or an HTML page: errors are a status with an empty body."""

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        self.finish()

    def set_default_headers(self) -> None:
        self.clear_header("Server")


class QuietNotFound(QuietHandler):
    def prepare(self) -> None:
        self.set_status(404)
        self.finish()


def no_access_log(handler: RequestHandler) -> None:
    """One log line per request would cost more than the request under load."""


def remote_ip(connection: httputil.HTTPConnection) -> str:
    """The sender's address, as Tornado's `HTTPServerRequest.remote_ip` would give it."""
    return getattr(getattr(connection, "context", None), "remote_ip", None) or ""


def start_line(status: int) -> httputil.ResponseStartLine:
    """The status line of an answer, made once for the statuses a hook gives (it is a tuple)."""
    return _START_LINES.get(status) or httputil.ResponseStartLine(
        "HTTP/1.1", status, HTTPStatus(status).phrase
    )


_START_LINES = {
    status: httputil.ResponseStartLine("HTTP/1.1", status, HTTPStatus(status).phrase)
    for status in (204, 400, 401, 404, 405, 413, 431, 500, 503)
}
_date_cache: tuple[int, str] = (0, "")


def http_date() -> str:
    """The Date header's value, formatted once a second."""
    global _date_cache
    now = int(time.time())
    if _date_cache[0] != now:
        _date_cache = (now, formatdate(now, usegmt=True))
    return _date_cache[1]
