"""`hooklab serve --metrics-port`: Prometheus metrics, from the `prometheus-client` library.

    hooklab_requests_total{webhook="<id>", status="204"}           requests answered
    hooklab_render_failures_total{webhook="<id>", reason="..."}    templates that made no event
    hooklab_commit_seconds                                         one transaction of a batch
    hooklab_forwarding_pending{destination="<url>"}                events not yet delivered
    hooklab_forwarding_lag_seconds{destination="<url>"}            how long the oldest waited
    hooklab_webhook_info{webhook="<id>", name="<name>"}            each webhook's name

A webhook is labelled by its id (its name in `hooklab_webhook_info`), never by its slug, which
is a secret URL; a destination by its URL without user, password, query or fragment. No
template, body or key is read. They are served on an address of their own, loopback unless
`--metrics-host` says otherwise, so that the webhooks' public port never shows them.

Counting a request costs a dictionary lookup and an addition on the event loop; what needs the
store (forwarding) is read when Prometheus asks, in a thread of its own, on a connection of its
own, so that a scrape never holds up an answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, InfoMetricFamily, Metric
from tornado.httpserver import HTTPServer
from tornado.web import Application, RequestHandler

from hooklab.core.errors import StoreError
from hooklab.core.outcome import Outcome, Reason
from hooklab.server.connections import no_access_log

if TYPE_CHECKING:
    from hooklab.store.contract import Outbox
    from hooklab.workspace import Workspace

__all__ = ["MetricsHandler", "ServerMetrics", "listen", "public_destination"]

log = logging.getLogger(__name__)

# The template's own failures: it raised, wrote no JSON, or wrote no valid event.
RENDER_FAILURES = frozenset({Reason.RENDER_ERROR, Reason.INVALID_OUTPUT, Reason.INVALID_EVENT})
UNKNOWN = "unknown"  # the webhook of a request to an unknown slug, or of one never read
# Commits take tens of microseconds on SQLite, a round trip or more on PostgreSQL.
COMMIT_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                  0.5, 1.0, 2.5, 5.0, 10.0)  # fmt: skip


class ServerMetrics:
    """The metrics of one server's receiver and store; `answered` and `committed` are what the
    receiver calls, `render()` the text Prometheus reads."""

    def __init__(self, workspace: Workspace) -> None:
        self.workspace = workspace
        self.registry = CollectorRegistry(auto_describe=True)
        self._requests = Counter(
            "hooklab_requests",
            "Requests to webhooks, by webhook id and the status they were answered",
            ["webhook", "status"],
            registry=self.registry,
        )
        self._render_failures = Counter(
            "hooklab_render_failures",
            "Requests whose template made no valid event, by webhook id and reason",
            ["webhook", "reason"],
            registry=self.registry,
        )
        self._commits = Histogram(
            "hooklab_commit_seconds",
            "Time to store one batch of requests and their outcomes, in one transaction",
            buckets=COMMIT_BUCKETS,
            registry=self.registry,
        )
        self.registry.register(_StoreState(self))
        ProcessCollector(registry=self.registry)  # CPU, memory, open files of this process
        self._counted: dict[tuple[str | None, int], Any] = {}
        self.names: dict[str, str] = {}  # webhook id to name, as of the last scrape
        self._outbox: Outbox | None = None
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="hooklab-metrics")

    def answered(self, status: int, outcome: Outcome | None) -> None:
        """Count one answer to `/hooks/...` (on the loop, for every request)."""
        webhook = outcome.webhook_id if outcome is not None else None
        key = (webhook, status)
        counter = self._counted.get(key)
        if counter is None:
            counter = self._counted[key] = self._requests.labels(webhook or UNKNOWN, str(status))
        counter.inc()
        if outcome is not None and outcome.reason in RENDER_FAILURES:
            assert outcome.reason is not None
            self._render_failures.labels(webhook or UNKNOWN, outcome.reason.value).inc()

    def committed(self, seconds: float) -> None:
        self._commits.observe(seconds)

    async def render(self) -> bytes:
        """The metrics as Prometheus's text; what the store knows is read in a thread."""
        directory = self.workspace.store.directory(fresh=False)  # held in memory
        self.names = {hook.id: hook.name for hook in directory.webhooks.values()}
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._thread, generate_latest, self.registry)

    def outbox(self) -> Outbox:
        """The forwarding queue, opened in the metrics thread, on a connection of its own."""
        if self._outbox is None:
            self._outbox = self.workspace.outbox()
        return self._outbox

    def reopen(self, error: Exception) -> None:
        """After the store failed a scrape: the next one opens a new connection. A failure
        that is no store's is a bug, and shows its traceback."""
        if not isinstance(error, StoreError):
            log.error("hooklab could not read the forwarding queue for metrics", exc_info=error)
        outbox, self._outbox = self._outbox, None
        if outbox is not None:
            with contextlib.suppress(Exception):
                outbox.close()

    def close(self) -> None:
        def shut() -> None:
            if self._outbox is not None:
                self._outbox.close()

        self._thread.submit(shut).result(timeout=10)
        self._thread.shutdown()


class _StoreState:
    """What is read from the store at each scrape: the forwarding queue and webhook names."""

    def __init__(self, metrics: ServerMetrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Metric]:
        info = InfoMetricFamily("hooklab_webhook", "Each webhook's name, by id", labels=["webhook"])
        for webhook_id, name in sorted(self.metrics.names.items()):
            info.add_metric([webhook_id], {"name": name})
        yield info
        pending = GaugeMetricFamily(
            "hooklab_forwarding_pending",
            "Events stored but not yet delivered, by destination",
            labels=["destination"],
        )
        lag = GaugeMetricFamily(
            "hooklab_forwarding_lag_seconds",
            "How long the oldest event not yet delivered has waited (0: none waits)",
            labels=["destination"],
        )
        failing = GaugeMetricFamily(
            "hooklab_forwarding_failing",
            "1 while the last attempt to deliver failed",
            labels=["destination"],
        )
        up = GaugeMetricFamily(
            "hooklab_store_up", "1 when the store answered this scrape's questions"
        )
        try:
            destinations = self.metrics.outbox().destinations()
        except Exception as exc:  # no answer: say so, and open a new connection next time
            self.metrics.reopen(exc)
            up.add_metric([], 0)
            yield up
            return
        now = self.metrics.workspace.clock()
        for destination in destinations:
            label = [public_destination(destination.url)]
            pending.add_metric(label, destination.pending)
            lag.add_metric(label, destination.lag(now) or 0.0)
            failing.add_metric(label, 1 if destination.failing else 0)
        up.add_metric([], 1)
        yield from (pending, lag, failing, up)

    def describe(self) -> list[Metric]:
        return []  # read at each scrape: nothing to ask the store for at registration


def public_destination(url: str) -> str:
    """A destination's URL as a label: no user, password, query or fragment (credentials are
    never stored, and this holds if one ever were)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


class MetricsHandler(RequestHandler):
    """`GET /metrics`, served on the metrics address only."""

    def initialize(self, metrics: ServerMetrics) -> None:
        self.metrics = metrics

    async def get(self) -> None:
        body = await self.metrics.render()
        self.set_header("Content-Type", CONTENT_TYPE_LATEST)
        self.set_header("Cache-Control", "no-store")
        self.finish(body)


def listen(metrics: ServerMetrics, host: str, port: int) -> tuple[HTTPServer, int]:
    """Serve `GET /metrics` on host:port (0: a free port) on the running loop; returns the
    server and its port. `OSError` when the address cannot be bound."""
    listener = socket.create_server(
        (host, port), family=socket.AF_INET6 if ":" in host else socket.AF_INET
    )
    listener.setblocking(False)
    app = Application(
        [(r"/metrics", MetricsHandler, {"metrics": metrics})],
        compress_response=True,
        log_function=no_access_log,
    )
    server = HTTPServer(app)
    server.add_sockets([listener])
    return server, int(listener.getsockname()[1])
