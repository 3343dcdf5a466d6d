"""The `%hooklab` subcommands: plain functions of (session, words), in one dispatch table.

Each parses its words, calls the Workspace (or replay), and returns what the cell shows.
Errors of hooklab's map (not found, invalid template, ...) become one-line UsageErrors in
`HooklabMagics.hooklab_magic`.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from IPython.core.error import UsageError

from hooklab.core.webhooks import Webhook
from hooklab.store.filters import HistoryFilter, checked_time

if TYPE_CHECKING:
    import pandas as pd

    from hooklab.notebook.historyview import HistoryPreview
    from hooklab.notebook.session import KernelSession
    from hooklab.workspace import Workspace


class Parser(argparse.ArgumentParser):
    """argparse that reports a bad line as IPython's one-line UsageError, never SystemExit."""

    def error(self, message: str) -> Any:
        raise UsageError(f"{self.prog}: {message}\n{self.format_usage().strip()}")

    def exit(self, status: int = 0, message: str | None = None) -> Any:
        raise UsageError(message or self.format_usage().strip())


def _webhook_arg(prog: str) -> Parser:
    parser = Parser(prog=f"%hooklab {prog}", add_help=False)
    parser.add_argument("name", help="the webhook's name, id or slug")
    return parser


def _hook(session: KernelSession, ref: str) -> Webhook:
    workspace = session.workspace
    return workspace.get_webhook(workspace.resolve_webhook(ref))


def ls(session: KernelSession, words: list[str]) -> pd.DataFrame:
    """ls: the webhooks, one row each."""
    import pandas as pd

    Parser(prog="%hooklab ls", add_help=False).parse_args(words)
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


def get(session: KernelSession, words: list[str]) -> Webhook:
    """get NAME: the webhook (shown as a card)."""
    return _hook(session, _webhook_arg("get").parse_args(words).name)


def toggle(session: KernelSession, words: list[str]) -> None:
    """toggle NAME: enable or disable the webhook."""
    hook = _hook(session, _webhook_arg("toggle").parse_args(words).name)
    hook = session.workspace.toggle_webhook(hook.id)
    print(f"webhook {hook.name!r} is now {'enabled' if hook.enabled else 'disabled'}")


def rotate(session: KernelSession, words: list[str]) -> str:
    """rotate NAME: a new URL; the old one stops working at once. Returns the new URL."""
    hook = _hook(session, _webhook_arg("rotate").parse_args(words).name)
    hook = session.workspace.rotate_webhook(hook.id)
    return session.url_of(hook) or hook.path


def delete(session: KernelSession, words: list[str]) -> None:
    """delete NAME: the webhook goes; what it captured stays in the history."""
    hook = _hook(session, _webhook_arg("delete").parse_args(words).name)
    session.workspace.delete_webhook(hook.id)
    print(f"webhook {hook.name!r} deleted; its history stays under id {hook.id}")


def url(session: KernelSession, words: list[str]) -> str:
    """url NAME: the webhook's URL, as a string (`url = %hooklab url NAME`)."""
    hook = _hook(session, _webhook_arg("url").parse_args(words).name)
    if session.base_url is None:
        session.start_receiver()
    found = session.url_of(hook)
    if found is None:
        raise UsageError("no receiver serves this home: `%hooklab serve` first")
    return found


def _history_parser(prog: str, *, flatten: bool = True) -> Parser:
    parser = Parser(prog=f"%hooklab {prog}", add_help=False)
    parser.add_argument("name", nargs="?", default=None, help="only this webhook")
    parser.add_argument("--event", default=None, help="only events with this name")
    if flatten:
        parser.add_argument("--flatten", action="store_true", help="payload.* columns")
    parser.add_argument(
        "--since", type=checked_time, help="ISO time, or an age (15m, 2h, 1d, 1w) on the clock"
    )
    parser.add_argument("--until", type=checked_time)
    return parser


def _history(
    session: KernelSession, args: argparse.Namespace, failed: bool | None = None
) -> HistoryFilter:
    """The filter a history subcommand asks for. Ages count back from the workspace's clock,
    so that in deterministic mode `--since 1h` finds what this session stored."""
    return HistoryFilter.of(
        args.name,
        event=args.event,
        since=args.since,
        until=args.until,
        failed=failed,
        now=session.workspace.clock(),
    )


def events(session: KernelSession, words: list[str]) -> pd.DataFrame | HistoryPreview:
    """events [NAME] [--event E] [--since T] [--until T] [--flatten]: events as a DataFrame
    (past 100,000, their count, first and last rows at once; `.frame` loads them all)."""
    args = _history_parser("events").parse_args(words)
    return _events(session, args, _history(session, args))


def failures(session: KernelSession, words: list[str]) -> pd.DataFrame | HistoryPreview:
    """failures [NAME] [--since T] [--until T]: the failed requests' events, their error first."""
    args = _history_parser("failures").parse_args(words)
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

    return history_view(session.workspace, "events", where, flatten=args.flatten)


def requests(session: KernelSession, words: list[str]) -> pd.DataFrame | HistoryPreview:
    """requests [NAME] [--event E] [--since T] [--until T]: captured requests, a DataFrame.

    With --event, the requests that produced an event of that name."""
    from hooklab.notebook.historyview import history_view

    args = _history_parser("requests", flatten=False).parse_args(words)
    return history_view(session.workspace, "requests", _history(session, args))


def replay(session: KernelSession, words: list[str]) -> Any:
    """replay NAME [--template VARIABLE] [--save]: NAME's captured requests, replayed.

    Through NAME's own template, or the one held in a notebook variable; --save stores the
    results as new requests."""
    from hooklab.history.replay import replay as run_replay
    from hooklab.notebook.progress import ProgressBar

    parser = _webhook_arg("replay")
    parser.add_argument("--template", default=None, help="a variable holding a template")
    parser.add_argument("--save", action="store_true", help="store the results as new requests")
    args = parser.parse_args(words)
    hook = _hook(session, args.name)
    template: str | Webhook = hook
    if args.template is not None:
        value = session.shell.user_ns.get(args.template) if session.shell else None
        if not isinstance(value, str):
            raise UsageError(f"--template {args.template}: no string variable of that name")
        template = value
    captured = session.workspace.captured(hook.id)
    return run_replay(
        captured, template, workspace=session.workspace, save=args.save, progress=ProgressBar()
    )


def serve(session: KernelSession, words: list[str]) -> str | None:
    """serve: serve this home from the kernel (on the port it had last, or %config
    HooklabMagics.port), unless another kernel or `hooklab serve` already does; the URL."""
    Parser(prog="%hooklab serve", add_help=False).parse_args(words)
    session.start_receiver()
    return session.base_url


def stop(session: KernelSession, words: list[str]) -> None:
    """stop: stop the in-kernel receiver; what is pending is written first."""
    Parser(prog="%hooklab stop", add_help=False).parse_args(words)
    if session.receiver is None:
        print("hooklab: no receiver running")
        return
    session.stop_receiver()
    print("hooklab receiver stopped")


def workspace(session: KernelSession, words: list[str]) -> Workspace:
    """workspace: the Workspace the magics use, for the Python API (`ws = %hooklab workspace`)."""
    Parser(prog="%hooklab workspace", add_help=False).parse_args(words)
    return session.workspace


def forward(session: KernelSession, words: list[str]) -> pd.DataFrame:
    """forward [--to URL] [--api-key K]: forward this home's events to a Prefect API from now on
    (delivered from this kernel); without --to, the state: pending, delivered, lag, last error."""
    import pandas as pd

    from hooklab.prefect import Credentials

    parser = Parser(prog="%hooklab forward", add_help=False)
    parser.add_argument("--to", default=None, help="a Prefect API URL")
    parser.add_argument("--api-key", default=None, help="a Prefect Cloud API key (not stored)")
    args = parser.parse_args(words)
    if args.to is not None:
        session.forward(args.to, Credentials.resolve(args.api_key))
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


def prefect_events(session: KernelSession, words: list[str]) -> pd.DataFrame:
    """prefect-events [URL] --since T [--until T] [--event NAME] [--resource ID] [--limit N]:
    a Prefect API's events (default $PREFECT_API_URL), with the columns of `events`."""
    import os

    from hooklab.prefect import read_events

    parser = Parser(prog="%hooklab prefect-events", add_help=False)
    parser.add_argument("url", nargs="?", default=os.environ.get("PREFECT_API_URL"))
    parser.add_argument("--since", type=checked_time, required=True)
    parser.add_argument("--until", type=checked_time, default=None)
    parser.add_argument("--event", default=None)
    parser.add_argument("--resource", default=None)
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--api-key", default=None)
    args = parser.parse_args(words)
    if not args.url:
        raise UsageError(
            "%hooklab prefect-events: give the Prefect API URL, or set PREFECT_API_URL"
        )
    return read_events(
        args.url,
        since=args.since,
        until=args.until,
        event=args.event,
        resource=args.resource,
        limit=args.limit,
        api_key=args.api_key,
    )


def cases(session: KernelSession, words: list[str]) -> Any:
    """cases export NAME --to DIR [--since T] [--until T] [--limit N] [--dedupe] [--force]: NAME's
    captured requests as webhook cases (SPEC 13), expecting what its template produces now."""
    from hooklab.history.exports import export_cases

    parser = Parser(prog="%hooklab cases", add_help=False)
    parser.add_argument("action", choices=["export"])
    parser.add_argument("name", help="the webhook's name, id or slug")
    parser.add_argument("--to", required=True, help="the folder, e.g. webhooks/NAME")
    parser.add_argument("--since", type=checked_time)
    parser.add_argument("--until", type=checked_time)
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--dedupe", action="store_true")
    parser.add_argument("--force", action="store_true")
    args = parser.parse_args(words)
    report = export_cases(
        session.workspace,
        args.name,
        args.to,
        since=args.since,
        until=args.until,
        limit=args.limit,
        dedupe=args.dedupe,
        force=args.force,
    )
    return _Help(str(report))  # shown as the lines it is


def help_text() -> str:
    lines = ["%hooklab SUBCOMMAND, where SUBCOMMAND is one of:"]
    for name, function in SUBCOMMANDS.items():
        first = (function.__doc__ or "").strip().splitlines()[0]
        lines.append(f"  {first}" if first.startswith(name) else f"  {name}: {first}")
    return "\n".join(lines)


class _Help:
    """Text a cell shows as it is (its repr), several lines included."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text


def help_command(session: KernelSession, words: list[str]) -> _Help:
    """help: this list."""
    return _Help(help_text())


SUBCOMMANDS: dict[str, Callable[[KernelSession, list[str]], Any]] = {
    "ls": ls,
    "get": get,
    "toggle": toggle,
    "rotate": rotate,
    "delete": delete,
    "url": url,
    "events": events,
    "requests": requests,
    "failures": failures,
    "replay": replay,
    "cases": cases,
    "serve": serve,
    "stop": stop,
    "forward": forward,
    "prefect-events": prefect_events,
    "workspace": workspace,
    "help": help_command,
}
