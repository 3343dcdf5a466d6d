"""`hooklab serve`: the receiver as a standalone process, stopped cleanly by SIGINT or SIGTERM.

python -m hooklab.server --home ./demo --port 0
2026-12-05T21:15:46.123Z hooklab serving at http://127.0.0.1:40123 (a free port, from --port 0)

Every line it writes while it runs carries its time (`hooklab.server.logs`); a refusal to start
is one plain line, as any command's error is (a JSON line under `--log-format json`).
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path

from hooklab.core.errors import InvalidInput, NotWritable, StoreError
from hooklab.core.webhooks import Webhook
from hooklab.prefect.client import split_credentials
from hooklab.prefect.process import ForwardingProcess
from hooklab.server import registry
from hooklab.server.api import AdminKeyError, admin_key
from hooklab.server.app import Receiver
from hooklab.server.banner import public_base, webhook_lines
from hooklab.server.connections import DEFAULT_IDLE_TIMEOUT
from hooklab.server.logs import FORMATS, configure, refuse, say, warn
from hooklab.server.receiver import DEFAULT_MAX_BODY, PortInUse, ReceiverError
from hooklab.store import holds_password, schema_steps
from hooklab.store.batches import destination_url
from hooklab.store.contract import Destination
from hooklab.workspace import Workspace, default_home, store_target

__all__ = ["DEFAULT_PORT", "AdminKeyError", "admin_key", "choose_port", "main", "parser", "serve"]

DEFAULT_PORT = 8765
# Why serve took its port, said on the line with its URL.
GIVEN, REMEMBERED, DEFAULT = "given", "remembered", "default"
_WHY = {
    GIVEN: "from --port",
    REMEMBERED: "the port this home was last served on; --port chooses another",
    DEFAULT: "the default port; --port chooses another",
}


def choose_port(home: Path, given: int | None) -> tuple[int, str]:
    """The port to serve `home` on, and why: `--port` when given, else the one the home was
    last served on (by a notebook or a server, from any address: the URLs senders were given
    keep working), else the default."""
    if given is not None:
        return given, GIVEN
    remembered = registry.remembered_port(home, None)
    if remembered is not None:
        return remembered, REMEMBERED
    return DEFAULT_PORT, DEFAULT


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="hooklab serve",
        description="Serve the webhooks and the management API of a hooklab home over HTTP.",
        epilog="Example: hooklab serve --home ./demo --port 8765",
    )
    p.add_argument(
        "--home",
        type=Path,
        default=None,
        help="folder holding hooklab.db and the admin key (default: $HOOKLAB_HOME or ~/.hooklab)",
    )
    p.add_argument(
        "--store",
        metavar="URL",
        default=None,
        help="where the history and webhooks are kept: a PostgreSQL URL "
        "(postgresql://user@host/db), which several servers may share, or a SQLite file "
        "(default: $HOOKLAB_STORE, else hooklab.db in the home)",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    p.add_argument(
        "--port",
        type=int,
        default=None,
        help="0 picks a free port (default: the port this home was last served on, which its "
        f"receiver.json remembers, so that its URLs stay; else {DEFAULT_PORT})",
    )
    p.add_argument(
        "--verbose",
        action="store_true",
        help="put the error text in the body of 400 and 401 answers",
    )
    p.add_argument(
        "--max-body",
        type=int,
        default=DEFAULT_MAX_BODY,
        metavar="BYTES",
        help=f"largest request body accepted (default: {DEFAULT_MAX_BODY})",
    )
    p.add_argument(
        "--idle-timeout",
        type=float,
        default=DEFAULT_IDLE_TIMEOUT,
        metavar="SECONDS",
        help="close a connection idle, or sending its request, this long "
        f"(default: {DEFAULT_IDLE_TIMEOUT:g})",
    )
    p.add_argument(
        "--forward-to",
        metavar="URL",
        default=None,
        help="also forward every stored event to this Prefect API "
        "(http://127.0.0.1:4200/api, say); credentials from PREFECT_API_KEY or "
        "PREFECT_API_AUTH_STRING, or a user:password in the URL; never stored or shown",
    )
    p.add_argument(
        "--public-url",
        metavar="URL",
        default=None,
        help="the base senders reach the webhooks at, behind a proxy or a tunnel "
        "(https://hooks.example.com): the webhooks' URLs printed at start use it",
    )
    p.add_argument(
        "--log-format",
        choices=FORMATS,
        default="text",
        help="text: a line with its time for a person (default); json: one JSON object a "
        "line (time, level, message, fields) for a log shipper, which names webhooks "
        "without their URLs",
    )
    p.add_argument(
        "--metrics-port",
        type=int,
        default=None,
        metavar="PORT",
        help="serve Prometheus metrics at http://HOST:PORT/metrics, apart from the webhooks "
        "(0 picks a free port; default: no metrics)",
    )
    p.add_argument(
        "--metrics-host",
        default="127.0.0.1",
        metavar="HOST",
        help="address the metrics listen on (default: 127.0.0.1, this machine only)",
    )
    return p


def main(argv: list[str] | None = None) -> int:
    """Run the server until SIGINT or SIGTERM; returns the exit status."""
    args = parser().parse_args(argv)
    home = (args.home or default_home()).expanduser()
    if args.max_body <= 0:
        print("hooklab: --max-body must be a positive number of bytes", file=sys.stderr)
        return 2
    if not args.idle_timeout > 0:  # (NaN too)
        print("hooklab: --idle-timeout must be a positive number of seconds", file=sys.stderr)
        return 2
    if args.forward_to is not None:
        try:
            destination_url(args.forward_to)
        except InvalidInput as exc:
            print(f"hooklab: --forward-to: {exc}", file=sys.stderr)
            return 2
    if args.public_url is not None:
        try:
            args.public_url = public_base(args.public_url)
        except InvalidInput as exc:
            print(f"hooklab: --public-url: {exc}", file=sys.stderr)
            return 2
    undo = configure(args.log_format)
    if args.store and holds_password(args.store):
        warn(
            "hooklab: the password in --store can be read by every local user in the process "
            "list while this runs; give it in PGPASSWORD or ~/.pgpass, or the URL in "
            "HOOKLAB_STORE"
        )
    try:
        return asyncio.run(
            serve(
                home,
                host=args.host,
                port=args.port,
                verbose=args.verbose,
                max_body=args.max_body,
                idle_timeout=args.idle_timeout,
                forward_to=args.forward_to,
                store=args.store,
                public_url=args.public_url,
                show_urls=args.log_format == "text",
                metrics_at=None
                if args.metrics_port is None
                else (args.metrics_host, args.metrics_port),
            )
        )
    except KeyboardInterrupt:  # a second Ctrl-C while stopping
        return 130
    finally:
        undo()


async def serve(
    home: Path,
    *,
    host: str = "127.0.0.1",
    port: int | None = None,
    verbose: bool = False,
    max_body: int = DEFAULT_MAX_BODY,
    idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
    forward_to: str | None = None,
    store: str | None = None,
    public_url: str | None = None,
    show_urls: bool = True,
    metrics_at: tuple[str, int] | None = None,
) -> int:
    """Serve `home` until a stop signal; every acknowledged request is stored before exit.
    Every forwarding destination the home records (and `forward_to`) is delivered meanwhile.
    `port` None: the home's own (`choose_port`). The webhooks' URLs said at start begin with
    `public_url` when given; `show_urls` False names each webhook without its URL.
    `metrics_at` (host, port): serve Prometheus metrics there."""
    port, why = choose_port(home, port)
    try:
        # Made (and written) before serving, so that nothing after the first line needs it.
        key = admin_key(home)
    except AdminKeyError as exc:
        refuse(f"hooklab: {exc}")
        return 1
    try:
        workspace = Workspace(store_target(store, home), home=home)
    except StoreError as exc:
        refuse(f"hooklab: cannot use the store: {exc}")
        return 2
    except NotWritable as exc:
        refuse(f"hooklab: {exc}")
        return 1
    if workspace.store.read_only is not None:  # reads work; serving writes
        refuse(f"hooklab: {workspace.store.read_only}; serving needs a home it can write")
        workspace.close()
        return 1
    api_path = f"/api/accounts/{workspace.account_id}/workspaces/{workspace.workspace_id}"
    receiver = Receiver(
        workspace,
        host=host,
        port=port,
        verbose=verbose,
        max_body=max_body,
        idle_timeout=idle_timeout,
        admin_key=key,
    )
    try:
        receiver.start()
    except PortInUse as exc:
        taken = str(exc)
        if why == REMEMBERED:
            taken = (
                f"port {port}, where this home was last served (its webhooks' URLs use it), is "
                "taken by another program: stop that program, or choose a port with --port"
            )
        refuse(f"hooklab: {taken}")
        workspace.close()
        return 1
    except ReceiverError as exc:
        refuse(f"hooklab: {exc}")
        workspace.close()
        return 1
    receiver.on_store_error = _report_store_error
    receiver.on_store_recovered = _report_store_recovered
    metrics = None
    if metrics_at is not None:
        try:
            metrics = Metrics(receiver, *metrics_at)
        except OSError as exc:
            where = f"{metrics_at[0]}:{metrics_at[1]}"
            why = os.strerror(exc.errno) if exc.errno else str(exc)
            refuse(f"hooklab: cannot serve metrics on {where}: {why}")
            await receiver.shutdown()
            workspace.close()
            return 1
    credentials = {}
    if forward_to is not None:
        forward_to, in_url = split_credentials(forward_to)  # kept in memory only
        destination = workspace.forward_to(forward_to)
        if in_url is not None:
            credentials[destination.url] = in_url
    # In a process of its own (a delivery thread here would take CPU from the answers), started
    # once the home forwards anywhere, even if a notebook adds the destination later.
    forwarding = ForwardingProcess(workspace, credentials, say=warn, inform=say)
    forwarding.keep_running()
    supervisor = EverySecond(forwarding.keep_running)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stopping.set)
    chosen = "a free port, from --port 0" if port == 0 else _WHY[why]
    say(
        f"hooklab serving at {receiver.url} ({chosen})",
        url=receiver.url,
        port=receiver.port,
        port_from=why,
    )
    if workspace.shared:
        say(f"store: {workspace.path} (shared with other servers)", store=workspace.path)
    if not _loopback(host):
        warn(
            f"hooklab: listening on {host}, so /hooks is open to the network: anyone who can "
            "reach this machine can send to a webhook whose URL they know"
        )
    # Where the key comes from: `hooklab admin-key` on a home whose server reads the key from
    # the environment would make a key of its own, which this server refuses.
    key_from = (
        "$HOOKLAB_ADMIN_KEY"
        if os.environ.get("HOOKLAB_ADMIN_KEY", "").strip()
        else "`hooklab admin-key`"
    )
    say(
        f"management API at {receiver.url}{api_path} (admin key: {key_from})",
        api=f"{receiver.url}{api_path}",
    )
    newer = sorted(set(workspace.store.migrations()) - set(schema_steps()))
    if newer:
        warn(
            f"hooklab: the store has schema steps a newer hooklab made ({', '.join(newer)}); "
            "this one serves on, as the steps only add, but upgrade it soon",
            steps=newer,
        )
    if metrics is not None:
        say(f"metrics at {metrics.url}", metrics=metrics.url)
        if not _loopback(metrics.host):
            warn(
                f"hooklab: metrics on {metrics.host} can be read by anyone who can reach this "
                "machine: webhook ids and names, destinations and traffic (never a slug, a "
                "body or a key)"
            )
    try:
        # Off the loop, which serves already: a store that stops answering now holds no request.
        hooks, destinations = await loop.run_in_executor(None, _shown_at_start, workspace)
    except StoreError as exc:
        warn(f"hooklab: cannot list the webhooks and forwarding destinations now: {exc}")
        hooks, destinations = None, []  # not "no webhooks yet": nobody knows
    shown = (
        []
        if hooks is None
        else webhook_lines(hooks, public_url or receiver.url, with_urls=show_urls)
    )
    for line, fields in shown:
        say(line, **fields)
    for destination in destinations:
        say(f"forwarding events to {destination.url}", destination=destination.url)
    try:
        await stopping.wait()
    finally:
        supervisor.stop()
        await receiver.shutdown()
        supervisor.join()  # after the answers: a check in flight may wait for the store
        if metrics is not None:
            metrics.close()
        forwarding.close()
        workspace.close()
    commits = receiver.commits
    say(
        f"hooklab stopped: {_count(commits.written, 'request')} stored in "
        f"{_count(commits.batches, 'transaction')}",
        stored=commits.written,
        transactions=commits.batches,
    )
    for cause, count in receiver.store_errors.items():
        warn(
            f"hooklab: over this run, {count} request(s) answered 503, not stored: {cause}",
            refused=count,
        )
    return 0


def _shown_at_start(workspace: Workspace) -> tuple[list[Webhook], list[Destination]]:
    return workspace.list_webhooks(), workspace.forwarding()


class EverySecond:
    """Calls `work()` every second on a thread of its own, until `stop()`. `work` may wait for
    the store (forwarding's check of the outbox), which the loop answering the senders and
    `/health` must never do: a store that stops answering would hold every request."""

    def __init__(self, work: Callable[[], object]) -> None:
        self.work = work
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="hooklab-supervisor", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stopped.wait(1.0):
            try:
                self.work()
            except Exception:
                logging.getLogger(__name__).exception("hooklab's supervisor failed; it goes on")

    def stop(self) -> None:
        """No call after the one in flight (returns at once)."""
        self._stopped.set()

    def join(self, timeout: float = 30.0) -> None:
        """Wait for the call in flight, if any."""
        self.stop()
        self._thread.join(timeout)


class Metrics:
    """Prometheus metrics of a receiver, served on an address of their own (the library is
    imported only when they are asked for)."""

    def __init__(self, receiver: Receiver, host: str, port: int) -> None:
        from hooklab.server.metrics import ServerMetrics, listen

        self.host = host
        self.counted = ServerMetrics(receiver.workspace)
        self.server, port = listen(self.counted, host, port)
        bracketed = f"[{host}]" if ":" in host else host
        self.url = f"http://{bracketed}:{port}/metrics"
        receiver.on_answer = self.counted.answered
        receiver.on_committed = self.counted.committed

    def close(self) -> None:
        self.server.stop()
        self.counted.close()


def _loopback(host: str) -> bool:
    """Whether `host` can be reached from this machine only."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a name: it may resolve to any interface


def _count(number: int, noun: str) -> str:
    """`1 request`, `3 requests`."""
    return f"{number} {noun}{'' if number == 1 else 's'}"


def _report_store_error(cause: str) -> None:
    warn(
        f"hooklab: a request could not be stored and was answered 503 ({cause}); "
        "the requests refused until it stores again are counted, not each shown"
    )


def _report_store_recovered(refused: int) -> None:
    warn(
        f"hooklab: storing requests again, after {_count(refused, 'request')} answered 503",
        refused=refused,
    )


if __name__ == "__main__":
    sys.exit(main())
