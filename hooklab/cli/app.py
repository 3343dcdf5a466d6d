"""The `hooklab` command: its parser, with every command registered, and how results become
exit codes."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from hooklab._version import __version__
from hooklab.cli.base import Context, Parser
from hooklab.cli.console import CommandError, UsageError
from hooklab.commands import CommandFailed, CommandUsageError
from hooklab.core.errors import USER_ERRORS, StoreError, answer_for

DESCRIPTION = """\
Prefect Cloud webhooks on your machine: define webhooks, capture and replay requests, and
export the events they produced. `hooklab webhook ...` takes the arguments of
`prefect cloud webhook ...` and prints the same messages."""

EPILOG = """\
examples:
  hooklab webhook create models -t @template.j2
  hooklab webhook ls
  hooklab events --since 1h -o csv > events.csv
  HOOKLAB_HOME=./demo hooklab serve --port 8765

Commands work on the local home ($HOOKLAB_HOME, default ~/.hooklab) with no server; the
management commands take --api-url/--api-key to work against a running `hooklab serve`."""


def build_parser() -> Parser:
    from hooklab.cli import accounts, cases, forward, history, stores, templates, webhooks

    parser = Parser(prog="hooklab", description=DESCRIPTION, epilog=EPILOG)
    parser.add_argument("--home", type=Path, default=None, metavar="DIR", help=argparse.SUPPRESS)
    parser.add_argument("--api-url", default=None, metavar="URL", help=argparse.SUPPRESS)
    parser.add_argument("--api-key", default=None, metavar="KEY", help=argparse.SUPPRESS)
    # `hooklab --version` alone is answered before this parser is built (hooklab.cli.main).
    parser.add_argument("--version", action="version", version=f"hooklab {__version__}")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)
    webhooks.register(parser, commands)
    accounts.register(parser, commands)
    history.register(parser, commands)
    templates.register(parser, commands)
    forward.register(parser, commands)
    cases.register(parser, commands)
    stores.register(parser, commands)
    return parser


def failure_message(exc: BaseException) -> str:
    """What the CLI prints for an error of the map (local, or the API's answer)."""
    answer = answer_for(exc)
    assert answer is not None
    detail = " ".join(answer.detail.split())
    return f"Unauthorized: {detail}" if answer.status == 401 else detail


def main(argv: Sequence[str] | None = None) -> int:
    """Run the `hooklab` command; returns its exit status (0 ok, 1 failed, 2 bad arguments)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a bad argument (already reported)
        return exc.code if isinstance(exc.code, int) else 0
    context = Context(args)
    try:
        status: int = args.handler(context)
        return status
    except UsageError as exc:
        print(f"{args.prog}: error: {exc.message} (see '{args.prog} --help')", file=sys.stderr)
        return exc.code
    except CommandError as exc:
        print(exc.message, file=sys.stderr)
        return exc.code
    except CommandUsageError as exc:  # found by an operation both surfaces share
        print(f"{args.prog}: error: {exc} (see '{args.prog} --help')", file=sys.stderr)
        return 2
    except CommandFailed as exc:
        print(CommandError(str(exc)).message, file=sys.stderr)
        return 1
    except StoreError as exc:  # unreachable, refused, too old: nothing was done
        print(f"hooklab: cannot use the store: {exc}", file=sys.stderr)
        return 2
    except USER_ERRORS as exc:  # not found, invalid, refused: the one map's detail, exit 1
        print(failure_message(exc), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("Interrupted.", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # `hooklab events | head`: the reader left; point stdout at nothing so exit is quiet.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    finally:
        context.close()
