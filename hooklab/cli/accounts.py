"""`hooklab service-account`, `enforce`, `serve` and `admin-key`: access to the workspace."""

from __future__ import annotations

import argparse
import json
import uuid
from typing import Any

from hooklab.cli.base import Context, Options, Parser, output_option
from hooklab.cli.console import CommandError, confirm, is_interactive, render_table
from hooklab.commands import positive_int


def account_id(text: str) -> str:
    """An argparse type: a service account id is a UUID."""
    try:
        return str(uuid.UUID(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a service account id (a UUID)") from None


def create_account(context: Context) -> int:
    account = context.api().create_service_account(context.args.name)
    if context.args.output == "json":
        context.print(json.dumps(account, indent=2))
        return 0
    context.print(f"Successfully created service account {account['name']}")
    context.print(f"id: {account['id']}")
    context.print(f"API key: {account['api_key']}")
    context.print(
        "The key is shown only this once; senders pass it as 'Authorization: Bearer <key>'."
    )
    return 0


def list_accounts(context: Context) -> int:
    accounts = context.api().list_service_accounts()
    if context.args.output == "json":
        context.print(json.dumps(accounts, indent=2))
        return 0
    rows = [[a["id"], a["name"], str(a.get("created", ""))] for a in accounts]
    context.print(render_table(["service account id", "name", "created"], rows))
    return 0


def delete_account(context: Context) -> int:
    account = context.args.account_id
    api = context.api()
    if is_interactive() and not confirm(
        f"Are you sure you want to delete service account with id '{account}'? "
        "Its webhooks are deleted with it.",
        default=False,
    ):
        raise CommandError("Deletion aborted.")
    api.delete_service_account(account)
    context.print(f"Successfully deleted service account {account}")
    return 0


def enforce(context: Context) -> int:
    if context.args.state is None:
        current = context.api().enforcement()
        context.print(f"Service account enforcement is {'on' if current else 'off'}")
        return 0
    on = context.args.state == "on"
    result = context.api().set_enforcement(on)
    if not on:
        context.print("Service account enforcement is now off")
        return 0
    disabled = int(result.get("disabled_webhooks", 0))
    noun = "webhook" if disabled == 1 else "webhooks"
    context.print(
        "Service account enforcement is now on: "
        f"{disabled} {noun} without a service account disabled"
    )
    return 0


def serve(context: Context) -> int:
    args = context.args
    # Only what was given is passed on, so the server's own defaults stay the only ones.
    argv = ["--home", str(context.home)]
    for option, value in (
        ("--host", args.host),
        ("--port", args.port),
        ("--max-body", args.max_body),
        ("--idle-timeout", args.idle_timeout),
        ("--forward-to", args.forward_to),
        ("--public-url", args.public_url),
        ("--log-format", args.log_format),
        ("--metrics-port", args.metrics_port),
        ("--metrics-host", args.metrics_host),
        ("--store", getattr(args, "store", None)),  # in this process: never on a command line
    ):
        if value is not None:
            argv += [option, str(value)]
    if args.verbose:
        argv.append("--verbose")
    status: int = _server_module().main(argv)
    return status


def admin_key(context: Context) -> int:
    server = _server_module()
    try:
        context.print(server.admin_key(context.home))
    except server.AdminKeyError as exc:
        raise CommandError(f"hooklab: {exc}") from None
    return 0


def _server_module() -> Any:
    # Imported on use: the server pulls in Tornado, which the other commands do not need.
    try:
        from hooklab.server import serve
    except ImportError as exc:
        raise CommandError(f"hooklab's server is not available: {exc}") from None
    return serve


def register(root: Parser, commands: argparse._SubParsersAction[Parser]) -> None:
    remote = [Options.remote]
    group = root.command(
        commands,
        "service-account",
        None,
        summary="Manage service accounts, whose API keys webhooks can require.",
        example="hooklab service-account create github-sender\nhooklab service-account ls",
    )
    sub = group.add_subparsers(title="commands", metavar="COMMAND", required=True)

    parser = root.command(
        sub,
        "create",
        create_account,
        parents=remote,
        summary="Create a service account and print its API key (shown only once).",
        example="hooklab service-account create github-sender",
    )
    parser.add_argument("name", metavar="NAME", help="The name of the service account.")
    output_option(parser)

    parser = root.command(
        sub,
        "ls",
        list_accounts,
        parents=remote,
        summary="List the service accounts.",
        example="hooklab service-account ls -o json",
    )
    output_option(parser)

    parser = root.command(
        sub,
        "delete",
        delete_account,
        parents=remote,
        summary="Delete a service account and, as Prefect does, its webhooks.",
        example="hooklab service-account delete 0b6a3c1e-9f5d-4e62-8a43-2f3f5a7c9d10",
    )
    parser.add_argument(
        "account_id",
        type=account_id,
        metavar="ACCOUNT_ID",
        help="The service account ID to delete.",
    )

    parser = root.command(
        commands,
        "enforce",
        enforce,
        parents=remote,
        summary="Show, or switch on or off, service-account enforcement.",
        description=(
            "Switch service-account enforcement on or off; without an argument, show whether "
            "it is on. When on, every webhook without a service account is disabled, and new "
            "webhooks must name one."
        ),
        example="hooklab enforce on",
    )
    parser.add_argument(
        "state", nargs="?", choices=["on", "off"], help="on or off (omit to show the setting)"
    )

    parser = root.command(
        commands,
        "serve",
        serve,
        parents=[Options.local],
        summary="Serve the webhooks and the management API over HTTP.",
        example="hooklab serve --port 8765",
    )
    parser.add_argument("--host", help="address to bind (default: 127.0.0.1)")
    parser.add_argument(
        "--port",
        type=int,
        help="port to listen on (default: the one this home was last served on, else 8765; "
        "0 picks one)",
    )
    parser.add_argument(
        "--verbose",
        action="store_true",
        help="put the error text in the body of 400 and 401 answers",
    )
    parser.add_argument(
        "--max-body", type=positive_int, metavar="BYTES", help="largest request body accepted"
    )
    parser.add_argument(
        "--idle-timeout",
        type=float,
        metavar="SECONDS",
        help="close a connection idle, or sending its request, this long (default: 300)",
    )
    parser.add_argument(
        "--forward-to",
        metavar="URL",
        help="also forward every stored event to this Prefect API; credentials from "
        "PREFECT_API_KEY or PREFECT_API_AUTH_STRING, never stored",
    )
    parser.add_argument(
        "--public-url",
        metavar="URL",
        help="the base senders reach the webhooks at, behind a proxy or a tunnel: the "
        "webhooks' URLs printed at start use it",
    )
    parser.add_argument(
        "--log-format",
        choices=["text", "json"],
        help="text (default): lines with their time; json: one object a line for a log "
        "shipper, webhooks named without their URLs",
    )
    parser.add_argument(
        "--metrics-port",
        type=int,
        metavar="PORT",
        help="serve Prometheus metrics at http://HOST:PORT/metrics, apart from the webhooks "
        "(0 picks a port; default: none)",
    )
    parser.add_argument(
        "--metrics-host",
        metavar="HOST",
        help="address the metrics listen on (default: 127.0.0.1, this machine only)",
    )

    root.command(
        commands,
        "admin-key",
        admin_key,
        parents=[Options.local],
        summary="Print the admin key that the management API requires.",
        example='curl -H "Authorization: Bearer $(hooklab admin-key)" '
        "http://127.0.0.1:8765/api/webhooks/filter -X POST",
    )
