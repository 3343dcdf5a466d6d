"""`hooklab forward` (status of forwarding, or a one-off backfill) and `hooklab prefect events`."""

from __future__ import annotations

import argparse
import json
from typing import Any

from hooklab.cli.base import Context, Options, Parser, output_option, time_option
from hooklab.cli.console import Progress, UsageError, render_table
from hooklab.commands import FORWARD, PREFECT_EVENTS
from hooklab.core.times import iso, utcnow
from hooklab.store.contract import Destination
from hooklab.store.filters import HistoryFilter


def forward(context: Context) -> int:
    args = context.args
    if args.what == "status":
        if args.to is not None or args.url is not None:
            raise UsageError("`forward status` takes no --to and no URL")
        return status(context)
    if args.what == "stop":
        if args.to is not None or args.url is None:
            raise UsageError("give the destination to remove: `hooklab forward stop URL`")
        return stop(context, args.url)
    if args.url is not None:
        raise UsageError(f"unexpected {args.url!r}: give --to URL, `status` or `stop URL`")
    if args.to is None:
        raise UsageError("give --to URL (send the history once), or `status`")
    from hooklab.prefect.client import Credentials, split_credentials
    from hooklab.prefect.forwarding import forward_history

    workspace = context.workspace()
    webhook = args.webhook and workspace.resolve_webhook(args.webhook, deleted=True)
    where = HistoryFilter(webhook=webhook, since=args.since, until=args.until)
    total = workspace.count("events")
    shown = split_credentials(args.to)[0]  # a password in the URL is used, never printed
    with Progress(f"Forwarding to {shown}", total=total) as bar:
        sent = forward_history(
            workspace,
            args.to,
            where,
            credentials=Credentials.resolve(args.api_key),
            progress=bar.update,
        )
    context.print(f"Sent {sent} event(s) to {shown}.")
    return 0


def stop(context: Context, url: str) -> int:
    """Remove a destination from the store: every server forwarding it stops within seconds."""
    from hooklab.prefect.client import split_credentials

    shown = split_credentials(url)[0]
    dropped = context.workspace().stop_forwarding(shown)
    pending = f"{dropped} pending event{'' if dropped == 1 else 's'}"
    context.print(
        f"Stopped forwarding to {shown}: removed from the store, {pending} dropped; servers "
        "forwarding this store stop sending there within seconds."
    )
    return 0


def status(context: Context) -> int:
    found = context.workspace().forwarding()
    now = utcnow()
    if context.args.output == "json":
        context.print(json.dumps([status_record(d, now) for d in found], indent=2))
        return 0
    if not found:
        context.print("Not forwarding: `hooklab serve --forward-to URL` starts it.")
        return 0
    headers = ["destination", "pending", "delivered", "lag", "last delivered", "last error", "at"]
    rows = [
        [
            d.url,
            str(d.pending),
            str(d.delivered),
            _seconds(d.lag(now)),
            _time(d.last_delivered),
            _error(d),
            _time(d.last_error_at),
        ]
        for d in found
    ]
    context.print(render_table(headers, rows, wrap=[5]))
    return 0


def status_record(destination: Destination, now: Any) -> dict[str, Any]:
    """A destination's state as plain JSON values (the CLI's `-o json`, the notebook's view)."""
    lag = destination.lag(now)
    return {
        "destination": destination.url,
        "pending": destination.pending,
        "delivered": destination.delivered,
        "lag_seconds": None if lag is None else round(lag, 3),
        "last_error": destination.last_error,
        "last_error_at": iso(destination.last_error_at) if destination.last_error_at else None,
        "failing": destination.failing,
        "last_delivered": iso(destination.last_delivered) if destination.last_delivered else None,
    }


def _error(destination: Destination) -> str:
    """The last error; one that delivery has since got past says so."""
    if not destination.last_error:
        return ""
    return destination.last_error if destination.failing else "(resolved) " + destination.last_error


def _time(moment: Any) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S") if moment else ""


def _seconds(value: float | None) -> str:
    return "" if value is None else f"{value:.1f} s"


def prefect_events(context: Context) -> int:
    from hooklab.cli.history import SUMMARIES, export
    from hooklab.commands import prefect_events as read_events

    args = context.args
    PREFECT_EVENTS.check(args)
    with Progress("Reading Prefect's events", total=0) as bar:
        frame = read_events(args, progress=bar.update)
    if args.output == "table":
        headers, rows, wrap = SUMMARIES["events"](frame)
        context.print(render_table(headers, rows, wrap=wrap, truncate=True))
    else:
        export(frame, args.output, None, label="Exporting events")
    return 0


def register(root: Parser, commands: argparse._SubParsersAction[Parser]) -> None:
    parser = root.command(
        commands,
        "forward",
        forward,
        summary="Forwarding to Prefect: its status, stop it, or send the stored history once.",
        description=(
            "`hooklab forward status` shows, per Prefect API this home forwards to, the events "
            "pending and delivered (stored by Prefect), the lag, when delivery last succeeded "
            "and the last error. `hooklab forward stop URL` removes a destination from the "
            "store (every server forwarding this store stops sending there within seconds) "
            "with the events it still had pending. `hooklab forward --to URL` sends "
            "the stored events (since T) to a Prefect API once and exits; the event ids stay, "
            "so Prefect keeps each once. Credentials: --api-key, or PREFECT_API_KEY / "
            "PREFECT_API_AUTH_STRING. Continuous forwarding: `hooklab serve --forward-to URL`."
        ),
        example=(
            "hooklab forward status\n"
            "hooklab forward stop http://127.0.0.1:4200/api\n"
            "hooklab forward --to http://127.0.0.1:4200/api --since 1d"
        ),
        parents=[Options.local],
    )
    parser.add_argument(
        "what",
        nargs="?",
        choices=["status", "stop"],
        help="status: show the forwarding state; stop URL: remove that destination",
    )
    parser.add_argument("url", nargs="?", metavar="URL", help="with stop: the destination")
    parser.add_argument("--to", metavar="URL", help="the Prefect API to send the history to")
    parser.add_argument("--webhook", metavar="NAME", help="only this webhook's events")
    time_option(parser, "--since", "only events received from this time on (30m, 1d, ISO 8601)")
    time_option(parser, "--until", "only events received before this time")
    FORWARD.add_arguments(parser)
    output_option(parser)

    group = root.command(
        commands,
        "prefect",
        None,
        summary="Read from a Prefect API.",
        example="hooklab prefect events http://127.0.0.1:4200/api --since 1h",
    )
    below = group.add_subparsers(title="commands", metavar="COMMAND", required=True)
    events = group.command(
        below,
        "events",
        prefect_events,
        summary="List or export a Prefect API's events (Prefect Cloud's or a server's).",
        example=(
            "hooklab prefect events http://127.0.0.1:4200/api --since 1h\n"
            "hooklab prefect events --since 1d --event 'prefect.flow-run.*' -o csv > runs.csv"
        ),
    )
    PREFECT_EVENTS.add_arguments(events)
    events.add_argument(
        "-o",
        "--output",
        choices=["table", "json", "csv"],
        default="table",
        help="table, json or csv",
    )
