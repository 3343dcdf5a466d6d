"""The operations `hooklab ...` and `%hooklab ...` both offer, each declared once: its arguments
(names, help, types that validate), the checks made after parsing, and the function it calls.

The command line (`hooklab.cli`) and the magics (`hooklab.notebook`) render an `Operation` into
their own parsers, next to what only one of them has (an output format on the command line, a
`--flatten` in a cell), and present the result their way: a table or a file, or a DataFrame.
`tests/test_commands.py` holds the two surfaces equal, its exceptions named with their reason.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hooklab.store.filters import HistoryFilter, checked_time

if TYPE_CHECKING:
    from datetime import datetime

    import pandas as pd

    from hooklab.history.exports import ExportReport
    from hooklab.prefect.events import Progress
    from hooklab.store.contract import StoredRequest
    from hooklab.workspace import Workspace


class CommandUsageError(Exception):
    """An argument found wrong after parsing (one missing that only together with another is
    needed, say): the command line exits 2, a cell raises IPython's UsageError."""


class CommandFailed(Exception):
    """The operation could not do what was asked (a folder it may not write): one line, exit 1."""


def positive_int(text: str) -> int:
    """An argparse type: a whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive whole number")
    return value


def whole_int(text: str) -> int:
    """An argparse type: a whole number of at least 0 (a history's `--limit`, as the Python
    API takes it: 0 reads no rows)."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of 0 or more")
    return value


@dataclass(frozen=True)
class Argument:
    """One argument: its names, its help, and argparse's other keywords (type, metavar, ...)."""

    names: tuple[str, ...]
    help: str
    options: dict[str, Any] = field(default_factory=dict)

    def add_to(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument(*self.names, help=self.help, **self.options)


def argument(*names: str, help: str, **options: Any) -> Argument:
    return Argument(names, help, options)


@dataclass(frozen=True)
class Operation:
    """An operation of both surfaces: `hooklab WORDS...` and `%hooklab MAGIC`."""

    words: tuple[str, ...]
    magic: str
    arguments: tuple[Argument, ...]
    # What parsing alone cannot check, done by both surfaces before they start the operation.
    check: Callable[[argparse.Namespace], None] = lambda args: None

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        """Declare this operation's arguments on a surface's parser."""
        for declared in self.arguments:
            declared.add_to(parser)


def _time(name: str, help: str) -> Argument:
    # Kept as the text given: an age counts back from the clock of the workspace it is applied
    # to, which in a deterministic notebook is not the wall clock.
    return argument(name, type=checked_time, metavar="T", help=help)


# The root parser of the command line has its own hidden --api-key (given before the command):
# a default here would overwrite it, so the attribute is set only when the option is given.
PREFECT_API_KEY = argument(
    "--api-key", default=argparse.SUPPRESS, metavar="KEY", help="Prefect Cloud API key (not stored)"
)

_HISTORY_TIMES = (
    _time("--since", "only from this time on: ISO 8601, or an age like 30m, 1h, 2d"),
    _time("--until", "only before this time"),
)

_LIMIT = argument("--limit", type=whole_int, metavar="N", help="only the N most recent")
EVENTS = Operation(
    ("events",),
    "events",
    (
        *_HISTORY_TIMES,
        argument("--event", metavar="NAME", help="only events with this name"),
        _LIMIT,
    ),
)
REQUESTS = Operation(
    ("requests",),
    "requests",
    (
        *_HISTORY_TIMES,
        argument("--event", metavar="NAME", help="only requests that made this event"),
        _LIMIT,
    ),
)
_REQUEST_WINDOW = (
    _time("--since", "only requests from this time on (ISO 8601, or 30m, 1h, 2d)"),
    _time("--until", "only requests before this time"),
    argument("--limit", type=positive_int, metavar="N", help="only the N most recent requests"),
)
# The webhook and the template are each surface's own: a template file on the command line, a
# notebook variable in a cell.
REPLAY = Operation(("replay",), "replay", _REQUEST_WINDOW)


def _check_prefect_events(args: argparse.Namespace) -> None:
    if not (args.url or os.environ.get("PREFECT_API_URL")):
        raise CommandUsageError("give the Prefect API URL, or set PREFECT_API_URL")
    if args.since is None:
        raise CommandUsageError("give --since: Prefect reads events in a time window")


PREFECT_EVENTS = Operation(
    ("prefect", "events"),
    "prefect-events",
    (
        argument(
            "url", nargs="?", metavar="URL", help="the Prefect API (default: $PREFECT_API_URL)"
        ),
        _time("--since", "events that occurred from this time on (required)"),
        _time("--until", "events that occurred before this time (default: now)"),
        argument("--event", metavar="NAME", help="one event name; NAME* is a prefix"),
        argument("--resource", metavar="ID", help="one resource id"),
        argument("--limit", type=positive_int, metavar="N", help="at most N events"),
        PREFECT_API_KEY,
    ),
    check=_check_prefect_events,
)
CASES_EXPORT = Operation(
    ("cases", "export"),
    "cases export",
    (
        argument("webhook", metavar="NAME", help="the webhook (name, id or slug)"),
        argument(
            "--to", type=Path, required=True, metavar="DIR", help="the folder, e.g. webhooks/NAME"
        ),
        *_REQUEST_WINDOW,
        argument(
            "--dedupe",
            action="store_true",
            help="keep one request per distinct outcome shape (status, error kind, event fields)",
        ),
        argument(
            "--force",
            action="store_true",
            help="replace or remove files that a person changed since the last export, or that "
            "no export wrote (webhook.json is merged either way)",
        ),
    ),
)
FORWARD = Operation(("forward",), "forward", (PREFECT_API_KEY,))

OPERATIONS = (EVENTS, REQUESTS, REPLAY, PREFECT_EVENTS, CASES_EXPORT, FORWARD)


def history_filter(
    args: argparse.Namespace, *, failed: bool | None = None, now: datetime | None = None
) -> HistoryFilter:
    """The history `events` and `requests` read: `args.webhook` and the table's arguments.
    Ages count back from `now`, the workspace's clock (the wall clock when None)."""
    return HistoryFilter.of(
        args.webhook, event=args.event, since=args.since, until=args.until, failed=failed, now=now
    )


def captured(
    workspace: Workspace, webhook_id: str, args: argparse.Namespace, *, now: datetime | None = None
) -> list[StoredRequest]:
    """`replay`'s requests: the webhook's captured in the window, the `--limit` most recent."""
    where = HistoryFilter.of(webhook_id, since=args.since, until=args.until, now=now)
    found = workspace.captured(where)
    return found[-args.limit :] if args.limit is not None else found


def captured_batches(
    workspace: Workspace, webhook_id: str, args: argparse.Namespace, *, now: datetime | None = None
) -> tuple[int, Iterator[list[StoredRequest]]]:
    """`captured`, read a batch at a time: how many, and the batches, oldest first."""
    where = HistoryFilter.of(webhook_id, since=args.since, until=args.until, now=now)
    return workspace.captured_batches(where, limit=args.limit)


def prefect_events(args: argparse.Namespace, *, progress: Progress | None = None) -> pd.DataFrame:
    """`prefect events`: a Prefect API's events, with the columns of the stored events."""
    from hooklab.prefect.events import read_events

    PREFECT_EVENTS.check(args)
    return read_events(
        args.url or os.environ["PREFECT_API_URL"],
        since=args.since,
        until=args.until,
        event=args.event,
        resource=args.resource,
        limit=args.limit,
        api_key=getattr(args, "api_key", None),
        progress=progress,
    )


def export_cases(workspace: Workspace, args: argparse.Namespace) -> ExportReport:
    """`cases export`: the webhook's captured requests written as cases under `args.to`."""
    from hooklab.history.exports import export_cases as export
    from hooklab.history.writes import RefusedWrite

    try:
        return export(
            workspace,
            args.webhook,
            args.to,
            since=args.since,
            until=args.until,
            limit=args.limit,
            dedupe=args.dedupe,
            force=args.force,
        )
    except RefusedWrite as exc:
        raise CommandFailed(str(exc)) from None
    except OSError as exc:
        raise CommandFailed(f"Cannot write the cases to {args.to}: {exc.strerror or exc}") from None
