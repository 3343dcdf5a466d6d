"""`hooklab store copy SRC DST`: move a history between stores (SQLite and PostgreSQL)."""

from __future__ import annotations

import argparse
from pathlib import Path

from hooklab.cli.base import Context, Parser
from hooklab.cli.console import Progress
from hooklab.core.errors import StoreError
from hooklab.store import is_postgres, open_store
from hooklab.store.copying import copy_store, total_rows
from hooklab.workspace import DATABASE


def store_name(given: str) -> str:
    """A store as the command takes it: a PostgreSQL URL, a SQLite file, or a home folder
    (its hooklab.db)."""
    if is_postgres(given) or given == ":memory:":
        return given
    path = Path(given).expanduser()
    return str(path / DATABASE) if path.is_dir() else str(path)


# The ids the management API's long URLs carry (`/api/accounts/<id>/workspaces/<id>/...`).
STABLE_IDS = ("account_id", "workspace_id")


def existing_source(given: str) -> str:
    """The store to copy from, which must exist: a typo must not read as an empty history."""
    name = store_name(given)
    if is_postgres(name) or name == ":memory:" or Path(name).is_file():
        return name
    if Path(given).expanduser().is_dir():
        raise StoreError(f"{given} has no {DATABASE}: it is not a home with a SQLite store")
    raise StoreError(f"no store at {given}: not a home folder, a SQLite file or a URL")


def copy(context: Context) -> int:
    args = context.args
    source = open_store(existing_source(args.source))
    try:
        destination = open_store(store_name(args.destination))
    except BaseException:
        source.close()
        raise
    try:
        label = f"Copying {source.location} to {destination.location}"
        kept = {key: destination.setting(key) for key in STABLE_IDS}
        with Progress(label, total=total_rows(source)) as bar:
            copied = copy_store(source, destination, progress=bar.advance)
        differ = [
            key
            for key in STABLE_IDS
            if kept[key] is not None and source.setting(key) not in (None, kept[key])
        ]
    finally:
        source.close()
        destination.close()
    counts = ", ".join(f"{count} {table.replace('_', ' ')}" for table, count in copied.items())
    context.print(f"Copied into {destination.location}: {counts} (rows already there skipped).")
    if differ:
        context.print(
            f"Note: {destination.location} keeps its own account and workspace ids, made when it "
            "was first used, so the management API's /api/accounts/... URLs differ from the "
            "source's (webhook URLs do not). To keep them, copy into a store nothing has used."
        )
    return 0


def register(root: Parser, commands: argparse._SubParsersAction[Parser]) -> None:
    group = root.command(
        commands,
        "store",
        None,
        summary="Move a history between stores.",
        example="hooklab store copy ~/.hooklab postgresql://hooklab@db.internal/hooklab",
    )
    verbs = group.add_subparsers(title="commands", metavar="COMMAND", required=True)
    parser = group.command(
        verbs,
        "copy",
        copy,
        summary="Copy webhooks, service accounts, settings, requests and events between stores.",
        description=(
            "Copies everything a store keeps from SRC into DST, with the same ids, oldest "
            "first: a SQLite home into PostgreSQL to run several servers, or back. Rows DST "
            "has already are skipped, so running it again copies only what is new. "
            "Forwarding destinations are not copied: add them where you deliver from."
        ),
        example=(
            "hooklab store copy ~/.hooklab postgresql://hooklab@db.internal/hooklab\n"
            "hooklab store copy postgresql://hooklab@db.internal/hooklab ./backup.db"
        ),
    )
    parser.add_argument("source", metavar="SRC", help="a home folder, a SQLite file or a URL")
    parser.add_argument("destination", metavar="DST", help="a home folder, a SQLite file or a URL")
