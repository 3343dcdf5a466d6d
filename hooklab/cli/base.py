"""What every `hooklab` command shares: the parser, the common options, and the Context a
handler gets. Command modules import this, never the app that registers them."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal, NoReturn

from hooklab.cli.backend import LocalApi, ManagementApi
from hooklab.cli.console import UsageError
from hooklab.core.errors import InvalidInput, StoreError
from hooklab.store import is_postgres
from hooklab.store.filters import parse_time
from hooklab.workspace import Workspace, default_home, store_target

Handler = Callable[["Context"], int]


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
    options.add_argument(
        "--store",
        default=argparse.SUPPRESS,
        metavar="URL",
        help="where the history and webhooks are kept: a PostgreSQL URL "
        "(postgresql://user@host/db) or a SQLite file (default: $HOOKLAB_STORE, else "
        "hooklab.db in the home)",
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


def time_option(parser: argparse.ArgumentParser, name: str, help: str) -> None:
    """A --since/--until option, read by the one time parser."""
    parser.add_argument(name, type=parse_time, metavar="T", help=help)


def _not_served_elsewhere(home: Path) -> None:
    """Refuse to make an empty SQLite store in a home that `hooklab serve` serves from
    PostgreSQL: the person meant that store, and only forgot to name it."""
    from hooklab.server import registry
    from hooklab.workspace import DATABASE

    if (home / DATABASE).exists():
        return
    served = registry.read(home)
    if served is not None and served.store is not None:
        raise StoreError(
            f"{home} is served from {served.store}: pass --store URL or set HOOKLAB_STORE "
            "(the home keeps no password)"
        )


Missing = Literal["make", "refuse", "empty"]


class Context:
    """What a command needs from its invocation: the parsed arguments, the home, the API."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self._workspace: Workspace | None = None

    @property
    def home(self) -> Path:
        home: Path | None = self.args.home
        return home.expanduser() if home is not None else default_home()

    def workspace(self, *, missing: Missing = "make") -> Workspace:
        """The store this invocation names. When nothing was ever stored where it points (a
        mistyped --home or --store, often), `missing` says what to do: "make" the store (for
        commands that add to it), "refuse" in one line (for reading the history, which would
        otherwise read as empty), or read an "empty" one and make nothing (for commands on
        webhooks, which then say, as Prefect does, that there is no such webhook)."""
        if self._workspace is None:
            store = getattr(self.args, "store", None)
            named = bool(store or os.environ.get("HOOKLAB_STORE"))
            target = store_target(store, self.home)
            if not named:
                _not_served_elsewhere(self.home)
            if missing != "make" and not is_postgres(target) and not Path(target).exists():
                if missing == "empty":
                    self._workspace = Workspace(":memory:")
                    return self._workspace
                if named:
                    raise StoreError(
                        f"no SQLite store at {target}, so nothing to read: check --store or "
                        "HOOKLAB_STORE"
                    )
                raise StoreError(
                    f"no hooklab home at {self.home}, so nothing to read: check --home or "
                    "HOOKLAB_HOME, or name a store with --store"
                )
            self._workspace = Workspace(target, home=self.home)
        return self._workspace

    def api(self, *, missing: Missing = "make") -> ManagementApi:
        """The running API when --api-url (or $HOOKLAB_API_URL) is set, else the local home
        (`missing`: as for `workspace`)."""
        url = self.args.api_url or os.environ.get("HOOKLAB_API_URL")
        if not url:
            return LocalApi(self.workspace(missing=missing))
        key = self.args.api_key or os.environ.get("HOOKLAB_API_KEY")
        if not key:
            raise UsageError("--api-url needs an API key: give --api-key or set HOOKLAB_API_KEY")
        from hooklab.cli.apiclient import ApiClient

        try:
            return ApiClient(url, key)
        except InvalidInput as exc:
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
