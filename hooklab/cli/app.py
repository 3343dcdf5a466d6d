"""The `hooklab` command: its parser, shared options, and how results become exit codes."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

from hooklab.cli.backend import LocalApi, ManagementApi
from hooklab.cli.console import CommandError, UsageError
from hooklab.workspace import Workspace, default_home

Handler = Callable[["Context"], int]

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


class Parser(argparse.ArgumentParser):
    """argparse, with a bad argument reported on one line and exit status 2."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")

    def command(
        self,
        subparsers: argparse._SubParsersAction[Parser],
        name: str,
        handler: Handler | None,
        *,
        summary: str,
        example: str,
        description: str = "",
        parents: Sequence[Parser] = (),
        aliases: Sequence[str] = (),
    ) -> Parser:
        """Add a subcommand whose --help ends with an example; a group passes no handler."""
        parser = subparsers.add_parser(
            name,
            help=summary,
            description=description or summary,
            epilog="example:\n" + "\n".join(f"  {line}" for line in example.splitlines()),
            parents=list(parents),
            aliases=list(aliases),
        )
        if handler is not None:
            parser.set_defaults(handler=handler, prog=parser.prog)
        return parser


def _local_options() -> Parser:
    # SUPPRESS keeps an option given before the command (`hooklab --home X webhook ls`) from
    # being overwritten by the subcommand's default.
    options = Parser(add_help=False)
    options.add_argument(
        "--home",
        type=Path,
        default=argparse.SUPPRESS,
        metavar="DIR",
        help="hooklab home (default: $HOOKLAB_HOME, else ~/.hooklab)",
    )
    return options


def _remote_options() -> Parser:
    options = Parser(add_help=False, parents=[_local_options()])
    options.add_argument(
        "--api-url",
        default=argparse.SUPPRESS,
        metavar="URL",
        help="a running hooklab API, e.g. http://127.0.0.1:8765 (default: $HOOKLAB_API_URL)",
    )
    options.add_argument(
        "--api-key",
        default=argparse.SUPPRESS,
        metavar="KEY",
        help="its admin key, see `hooklab admin-key` (default: $HOOKLAB_API_KEY)",
    )
    return options


def output_option(parser: argparse.ArgumentParser, help: str = "table (default), or json") -> None:
    parser.add_argument("-o", "--output", choices=["table", "json"], default="table", help=help)


class Options:
    """The parent parsers commands pick from: `local` (--home), `remote` (also --api-url/-key)."""

    local = _local_options()
    remote = _remote_options()


def build_parser() -> Parser:
    from hooklab.cli import accounts, history, templates, webhooks

    parser = Parser(prog="hooklab", description=DESCRIPTION, epilog=EPILOG)
    parser.add_argument("--home", type=Path, default=None, metavar="DIR", help=argparse.SUPPRESS)
    parser.add_argument("--api-url", default=None, metavar="URL", help=argparse.SUPPRESS)
    parser.add_argument("--api-key", default=None, metavar="KEY", help=argparse.SUPPRESS)
    parser.add_argument("--version", action="version", version=f"hooklab {_version()}")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)
    webhooks.register(parser, commands)
    accounts.register(parser, commands)
    history.register(parser, commands)
    templates.register(parser, commands)
    return parser


def _version() -> str:
    from hooklab import __version__

    return __version__


class Context:
    """What a command needs from its invocation: the parsed arguments, the home, the API."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self._workspace: Workspace | None = None

    @property
    def home(self) -> Path:
        home: Path | None = self.args.home
        return home.expanduser() if home is not None else default_home()

    def workspace(self) -> Workspace:
        if self._workspace is None:
            self._workspace = Workspace(self.home / "hooklab.db")
        return self._workspace

    def api(self) -> ManagementApi:
        """The running API when --api-url (or $HOOKLAB_API_URL) is set, else the local home."""
        url = self.args.api_url or os.environ.get("HOOKLAB_API_URL")
        if not url:
            return LocalApi(self.workspace())
        key = self.args.api_key or os.environ.get("HOOKLAB_API_KEY")
        if not key:
            raise UsageError("--api-url needs an API key: give --api-key or set HOOKLAB_API_KEY")
        from hooklab.cli.apiclient import ApiClient

        try:
            return ApiClient(url, key)
        except ValueError as exc:
            raise UsageError(f"argument --api-url: {exc}") from None

    def reject_remote(self) -> None:
        """For commands that read the local home only: an explicit --api-url is a mistake."""
        if self.args.api_url or self.args.api_key:
            raise UsageError("this command reads the local home; --api-url/--api-key do not apply")

    def print(self, text: str = "") -> None:
        print(text, file=sys.stdout, flush=True)

    def close(self) -> None:
        if self._workspace is not None:
            self._workspace.close()


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
