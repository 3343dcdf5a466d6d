"""The `%hooklab` subcommands: one dispatch table of plain functions of (session, arguments),
each beside the arguments it takes.

The operations the command line offers too take their arguments, checks and the function they
call from `hooklab.commands`, declared once for both. A subcommand calls the Workspace (or
replay) and returns what the cell shows. Errors of hooklab's map (not found, invalid template,
...) become one-line UsageErrors in `HooklabMagics.hooklab_magic`.
"""

from __future__ import annotations

import argparse
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from IPython.core.error import UsageError

from hooklab import commands
from hooklab.commands import (
    CASES_EXPORT,
    EVENTS,
    FORWARD,
    PREFECT_EVENTS,
    REPLAY,
    REQUESTS,
    Operation,
)
from hooklab.core.events import uuid7
from hooklab.core.times import utcnow
from hooklab.core.webhooks import Webhook

if TYPE_CHECKING:
    import pandas as pd

    from hooklab.notebook.historyview import HistoryPreview
    from hooklab.notebook.session import KernelSession
    from hooklab.store.filters import HistoryFilter
    from hooklab.workspace import Workspace


class Parser(argparse.ArgumentParser):
    """argparse that reports a bad line as IPython's one-line UsageError, never SystemExit."""

    def error(self, message: str) -> Any:
        raise UsageError(f"{self.prog}: {message}\n{self.format_usage().strip()}")

    def exit(self, status: int = 0, message: str | None = None) -> Any:
        raise UsageError(message or self.format_usage().strip())


def _no_arguments(parser: Parser) -> None:
    pass


def _webhook_name(parser: Parser) -> None:
    parser.add_argument("name", help="the webhook's name, id or slug")


def _hook(session: KernelSession, ref: str) -> Webhook:
    workspace = session.workspace
    return workspace.get_webhook(workspace.resolve_webhook(ref))


def ls(session: KernelSession, args: argparse.Namespace) -> pd.DataFrame:
    """ls: the webhooks, one row each."""
    import pandas as pd

    rows = [
        {
            "name": hook.name,
            "enabled": hook.enabled,
            "url": session.url_of(hook) or hook.path,
            "description": hook.description,
            "service_account_id": hook.service_account_id,
            "created": hook.created,
            "updated": hook.updated,
            "id": hook.id,
        }
        for hook in session.workspace.list_webhooks()
    ]
    columns = ["name", "enabled", "url", "description", "service_account_id", "created", "updated"]
    return pd.DataFrame(rows, columns=[*columns, "id"])


def get(session: KernelSession, args: argparse.Namespace) -> Webhook:
    """get NAME: the webhook (shown as a card)."""
    return _hook(session, args.name)


def toggle(session: KernelSession, args: argparse.Namespace) -> None:
    """toggle NAME: enable or disable the webhook."""
    hook = session.workspace.toggle_webhook(_hook(session, args.name).id)
    print(f"webhook {hook.name!r} is now {'enabled' if hook.enabled else 'disabled'}")


def rotate(session: KernelSession, args: argparse.Namespace) -> str:
    """rotate NAME: a new URL; the old one stops working at once. Returns the new URL."""
    hook = session.workspace.rotate_webhook(_hook(session, args.name).id)
    return session.url_of(hook) or hook.path


def delete(session: KernelSession, args: argparse.Namespace) -> None:
    """delete NAME: the webhook goes; what it captured stays in the history."""
    hook = _hook(session, args.name)
    session.workspace.delete_webhook(hook.id)
    print(f"webhook {hook.name!r} deleted; its history stays under id {hook.id}")


def url(session: KernelSession, args: argparse.Namespace) -> str:
    """url NAME: the webhook's URL, as a string (`url = %hooklab url NAME`)."""
    hook = _hook(session, args.name)
    if session.base_url is None:
        session.start_receiver()
    found = session.url_of(hook)
    if found is None:
        raise UsageError("no receiver serves this home: `%hooklab serve` first")
    return found


def _history_arguments(
    operation: Operation, *, flatten: bool, failed: bool = False
) -> Callable[[Parser], None]:
    """A history subcommand's arguments: the webhook by position, then the operation's."""

    def arguments(parser: Parser) -> None:
        parser.add_argument("webhook", nargs="?", metavar="NAME", help="only this webhook")
        operation.add_arguments(parser)
        if flatten:
            parser.add_argument("--flatten", action="store_true", help="payload.* columns")
        if failed:
            parser.add_argument("--failed", action="store_true", help="only failed requests")

    return arguments


def _history(
    session: KernelSession, args: argparse.Namespace, failed: bool | None = None
) -> HistoryFilter:
    """The filter a history subcommand asks for. Ages count back from the workspace's clock,
    so that in deterministic mode `--since 1h` finds what this session stored."""
    return commands.history_filter(args, failed=failed, now=session.workspace.clock())


def events(session: KernelSession, args: argparse.Namespace) -> pd.DataFrame | HistoryPreview:
    """events [NAME] [--since T] [--until T] [--event E] [--limit N] [--flatten]: events as a
    DataFrame (past 100,000, their count, first and last rows at once; `.frame` loads them all)."""
    return _events(session, args, _history(session, args))


def failures(session: KernelSession, args: argparse.Namespace) -> pd.DataFrame | HistoryPreview:
    """failures [NAME] [--since T] [--until T] [--limit N]: the failed requests' events, their
    error first."""
    shown = _events(session, args, _history(session, args, failed=True))
    from hooklab.notebook.historyview import HistoryPreview

    if isinstance(shown, HistoryPreview):  # a long history: its preview, as it comes
        return shown
    first = [column for column in FAILURE_COLUMNS if column in shown.columns]
    return shown[[*first, *(column for column in shown.columns if column not in first)]]


# What a failure is read by, on screen before any other column.
FAILURE_COLUMNS = ("error", "webhook_name", "received")


def _events(
    session: KernelSession, args: argparse.Namespace, where: HistoryFilter
) -> pd.DataFrame | HistoryPreview:
    from hooklab.notebook.historyview import history_view

    return history_view(session.workspace, "events", where, flatten=args.flatten, limit=args.limit)


def requests(session: KernelSession, args: argparse.Namespace) -> pd.DataFrame | HistoryPreview:
    """requests [NAME] [--since T] [--until T] [--event E] [--failed] [--limit N]: captured
    requests.

    With --event, the requests that produced an event of that name; with --failed, those
    that failed."""
    from hooklab.notebook.historyview import history_view

    where = _history(session, args, failed=True if args.failed else None)
    return history_view(session.workspace, "requests", where, limit=args.limit)


def _replay_arguments(parser: Parser) -> None:
    _webhook_name(parser)
    parser.add_argument("--template", default=None, help="a variable holding a template")
    REPLAY.add_arguments(parser)
    parser.add_argument("--save", action="store_true", help="store the results as new requests")
    parser.add_argument(
        "--processes",
        type=commands.positive_int,
        metavar="N",
        help="render in N worker processes (1: in this process)",
    )


def replay(session: KernelSession, args: argparse.Namespace) -> Any:
    """replay NAME [--template VARIABLE] [--since T] [--until T] [--limit N] [--save]: NAME's
    captured requests, replayed.

    Through NAME's own template, or the one held in a notebook variable; --save stores the
    results as new requests."""
    from hooklab.history.replay import replay as run_replay
    from hooklab.notebook.progress import ProgressBar

    hook = _hook(session, args.name)
    template: str | Webhook = hook
    if args.template is not None:
        value = session.shell.user_ns.get(args.template) if session.shell else None
        if not isinstance(value, str):
            raise UsageError(f"--template {args.template}: no string variable of that name")
        template = value
    ws = session.workspace
    deterministic = ws.clock is not utcnow or ws.new_id is not uuid7
    if args.processes and args.processes > 1 and (args.save or deterministic):
        raise UsageError(
            "--processes: a saved replay, or one with this notebook's deterministic clock and "
            "ids, runs in one process"
        )
    captured = commands.captured(ws, hook.id, args, now=ws.clock())
    return run_replay(
        captured,
        template,
        workspace=ws,
        save=args.save,
        progress=ProgressBar(),
        processes=args.processes,
    )


def serve(session: KernelSession, args: argparse.Namespace) -> str | None:
    """serve: serve this home from the kernel (on the port it had last, or %config
    HooklabMagics.port), unless another kernel or `hooklab serve` already does; the URL."""
    session.start_receiver()
    return session.base_url


def stop(session: KernelSession, args: argparse.Namespace) -> None:
    """stop: stop the in-kernel receiver; what is pending is written first."""
    if session.receiver is None:
        print("hooklab: no receiver running")
        return
    session.stop_receiver()
    print("hooklab receiver stopped")


def workspace(session: KernelSession, args: argparse.Namespace) -> Workspace:
    """workspace: the Workspace the magics use, for the Python API (`ws = %hooklab workspace`)."""
    return session.workspace


def _forward_arguments(parser: Parser) -> None:
    parser.add_argument(
        "--to",
        default=None,
        metavar="URL",
        help="a Prefect API to forward the events stored from now on to",
    )
    parser.add_argument(
        "--stop",
        default=None,
        metavar="URL",
        help="forward there no more: remove the destination and its pending events",
    )
    FORWARD.add_arguments(parser)


def forward(session: KernelSession, args: argparse.Namespace) -> pd.DataFrame:
    """forward [--to URL] [--stop URL] [--api-key K]: forward this home's events to a Prefect
    API from now on (delivered from this kernel), or stop forwarding there (for every server of
    the store too); then the state: pending, delivered, lag, last error."""
    import pandas as pd

    from hooklab.prefect import Credentials
    from hooklab.prefect.client import split_credentials

    if args.stop is not None:
        shown = split_credentials(args.stop)[0]
        dropped = session.workspace.stop_forwarding(shown)
        print(
            f"hooklab: stopped forwarding to {shown}: {dropped} pending "
            f"event{'' if dropped == 1 else 's'} dropped"
        )
    if args.to is not None:
        session.forward(args.to, Credentials.resolve(getattr(args, "api_key", None)))
    found = session.workspace.forwarding()
    now = session.workspace.clock()
    columns = [
        "destination", "pending", "delivered", "lag", "last_delivered", "last_error",
        "last_error_at", "failing",
    ]  # fmt: skip
    rows = [
        [
            d.url,
            d.pending,
            d.delivered,
            d.lag(now),
            d.last_delivered,
            d.last_error,
            d.last_error_at,
            d.failing,
        ]
        for d in found
    ]
    return pd.DataFrame(rows, columns=columns)


def prefect_events(session: KernelSession, args: argparse.Namespace) -> pd.DataFrame:
    """prefect-events [URL] --since T [--until T] [--event NAME] [--resource ID] [--limit N]:
    a Prefect API's events (default $PREFECT_API_URL), with the columns of `events`."""
    return commands.prefect_events(args)


def _cases_arguments(parser: Parser) -> None:
    below = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    CASES_EXPORT.add_arguments(below.add_parser("export", add_help=False))


def cases(session: KernelSession, args: argparse.Namespace) -> Any:
    """cases export NAME --to DIR [--since T] [--until T] [--limit N] [--dedupe] [--force]: NAME's
    captured requests as webhook cases, expecting what its template produces now."""
    report = commands.export_cases(session.workspace, args)
    return _Help(str(report))  # shown as the lines it is


def help_text() -> str:
    lines = ["%hooklab SUBCOMMAND, where SUBCOMMAND is one of:"]
    for name, subcommand in SUBCOMMANDS.items():
        # The docstring's first paragraph, whole, wrapped under its subcommand.
        first = " ".join((subcommand.run.__doc__ or "").strip().split("\n\n")[0].split())
        entry = first if first.startswith(name) else f"{name}: {first}"
        lines.append(textwrap.fill(entry, 96, initial_indent="  ", subsequent_indent="      "))
    return "\n".join(lines)


class _Help:
    """Text a cell shows as it is (its repr), several lines included."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text


def help_command(session: KernelSession, args: argparse.Namespace) -> _Help:
    """help: this list."""
    return _Help(help_text())


@dataclass(frozen=True)
class Subcommand:
    """A subcommand: the function it calls, beside the arguments it takes; an operation the
    command line offers too names it, for its checks."""

    run: Callable[[KernelSession, argparse.Namespace], Any]
    arguments: Callable[[Parser], None] = _no_arguments
    operation: Operation | None = None

    def parser(self, name: str) -> Parser:
        parser = Parser(prog=f"%hooklab {name}", add_help=False)
        self.arguments(parser)
        return parser

    def __call__(self, session: KernelSession, name: str, words: list[str]) -> Any:
        args = self.parser(name).parse_args(words)
        if self.operation is not None:
            self.operation.check(args)
        return self.run(session, args)


SUBCOMMANDS: dict[str, Subcommand] = {
    "ls": Subcommand(ls),
    "get": Subcommand(get, _webhook_name),
    "toggle": Subcommand(toggle, _webhook_name),
    "rotate": Subcommand(rotate, _webhook_name),
    "delete": Subcommand(delete, _webhook_name),
    "url": Subcommand(url, _webhook_name),
    "events": Subcommand(events, _history_arguments(EVENTS, flatten=True), EVENTS),
    "requests": Subcommand(
        requests, _history_arguments(REQUESTS, flatten=False, failed=True), REQUESTS
    ),
    "failures": Subcommand(failures, _history_arguments(EVENTS, flatten=True), EVENTS),
    "replay": Subcommand(replay, _replay_arguments, REPLAY),
    "cases": Subcommand(cases, _cases_arguments, CASES_EXPORT),
    "serve": Subcommand(serve),
    "stop": Subcommand(stop),
    "forward": Subcommand(forward, _forward_arguments, FORWARD),
    "prefect-events": Subcommand(prefect_events, PREFECT_EVENTS.add_arguments, PREFECT_EVENTS),
    "workspace": Subcommand(workspace),
    "help": Subcommand(help_command),
}
