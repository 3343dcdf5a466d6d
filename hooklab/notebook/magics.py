"""IPython magics: `%%webhook NAME` and `%hooklab <subcommand>`; glue between cells and the core.

`%load_ext hooklab` registers them and starts nothing; the first webhook starts the receiver on
the kernel's own loop. Settings go through traitlets: `%config HooklabMagics.port = 8765`.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, cell_magic, line_magic, magics_class
from traitlets import Bool, Integer, Unicode, observe, validate
from traitlets.config import Configurable

from hooklab.commands import CommandFailed, CommandUsageError
from hooklab.core.errors import USER_ERRORS, answer_for
from hooklab.core.templates import TemplateError
from hooklab.core.webhooks import Webhook
from hooklab.notebook.session import KernelSession
from hooklab.notebook.subcommands import SUBCOMMANDS, Parser, help_text
from hooklab.notebook.webhookview import WebhookView
from hooklab.store import without_password
from hooklab.workspace import WebhookNotFound, Workspace, default_home, store_target

_ACTIVE: list[HooklabMagics] = []  # the magics `%load_ext hooklab` registered in this kernel


def active() -> KernelSession | None:
    """The hooklab session of this kernel, once `%load_ext hooklab` has run."""
    return _ACTIVE[0].session if _ACTIVE else None


@magics_class
class HooklabMagics(Magics, Configurable):
    """hooklab in a notebook. `%hooklab help` lists the subcommands."""

    home = Unicode(
        "", help="Folder of the workspace file; default $HOOKLAB_HOME or ~/.hooklab"
    ).tag(config=True)
    store = Unicode(
        "",
        help="Where the history and webhooks are kept: a PostgreSQL URL (postgresql://user@host/db)"
        " shared with servers and other notebooks, or a SQLite file; default $HOOKLAB_STORE, else"
        " hooklab.db in the home",
    ).tag(config=True)
    host = Unicode("127.0.0.1", help="Address the in-kernel receiver listens on").tag(config=True)
    port = Integer(
        0, help="Port of the in-kernel receiver; 0: the one this home had last, else a free one"
    ).tag(config=True)
    public_url = Unicode(
        "",
        help="Base of every URL shown, for a tunnel to this receiver (https://....trycloudflare.com)",
    ).tag(config=True)
    verbose = Bool(False, help="Put the error text in the body of 400 answers").tag(config=True)
    deterministic = Bool(
        False, help="Seeded ids and a fixed clock, so saved outputs stay the same (nbval)"
    ).tag(config=True)
    forward_to = Unicode(
        "",
        help="A Prefect API to forward every stored event to (credentials: PREFECT_API_KEY or "
        "PREFECT_API_AUTH_STRING, never stored)",
    ).tag(config=True)

    def __init__(self, shell: Any) -> None:
        Configurable.__init__(self, config=shell.config)
        Magics.__init__(self, shell=shell)
        shell.configurables.append(self)  # so that %config lists and sets these traits
        self.session = KernelSession(shell, self)
        _ACTIVE[:] = [self]

    @property
    def folder(self) -> Path:
        """The hooklab home: the folder of the workspace file."""
        return Path(self.home).expanduser() if self.home else default_home()

    @property
    def target(self) -> str:
        """The store: `store`, else $HOOKLAB_STORE, else the home's SQLite file."""
        full = getattr(self, "_store_urls", {}).get(self.store, self.store)
        return store_target(full or None, self.folder)

    @validate("store")
    def _password_out_of_sight(self, proposal: Any) -> str:
        """`%config HooklabMagics` shows every trait's value, in outputs that are saved and
        shared: the trait holds the URL without its password, kept here instead. A new
        password alone leaves the trait as it was, so the store is reopened here."""
        url = str(proposal["value"])
        shown = without_password(url)
        urls = getattr(self, "_store_urls", {})
        new_secret = shown == self.store and url != urls.get(shown, shown)
        self._store_urls = {**urls, shown: url}
        session = getattr(self, "session", None)  # none yet while the config is first read
        if new_secret and session is not None:
            session.reset()  # the trait stays as it was: no observer runs
        return shown

    @property
    def workspace(self) -> Workspace:
        """The session's workspace (`%hooklab workspace` gives it to a cell)."""
        return self.session.workspace

    def url_of(self, hook: Webhook) -> str | None:
        return self.session.url_of(hook)

    @observe("home", "store", "deterministic")
    def _new_workspace(self, change: Any) -> None:
        if change and change["name"] == "deterministic" and change["new"]:
            from hooklab.notebook.deterministic import NOTICE

            print(NOTICE)  # where it is switched on: a copied cell says what it does
        self.session.reset()

    @observe("host", "port")
    def _new_address(self, _change: Any) -> None:
        self.session.stop_receiver()

    @observe("forward_to")
    def _new_destination(self, change: Any) -> None:
        if change["new"]:
            self.session.forward(change["new"])

    @observe("verbose")
    def _new_verbosity(self, change: Any) -> None:
        self.session.set_verbose(bool(change["new"]))

    # The magics

    @cell_magic
    def webhook(self, line: str, cell: str) -> None:
        """%%webhook NAME [--description TEXT]: the cell is the template.

        Creates the webhook, or updates the one with that name (its URL stays). Shows the URL,
        a curl command, and the compatibility check.
        """
        parser = Parser(prog="%%webhook", add_help=False)
        parser.add_argument("name")
        parser.add_argument("--description", default=None)
        args = parser.parse_args(shlex.split(line))
        template = cell.rstrip("\n")
        ws = self.workspace
        try:
            try:
                hook = ws.get_webhook(args.name)
            except WebhookNotFound:
                hook = ws.create_webhook(args.name, template, args.description or "")
                verb = "created"
            else:
                hook = ws.update_webhook(hook.id, template=template, description=args.description)
                verb = "updated"
        except TemplateError as exc:
            raise UsageError(f"webhook {args.name!r} not saved: {exc}") from None
        except USER_ERRORS as exc:  # a name several webhooks share, say
            raise UsageError(_detail(exc)) from None
        self.session.start_receiver()
        from IPython.display import display

        display(WebhookView(hook, verb, self.session.url_of(hook)))

    @line_magic("hooklab")  # type: ignore[arg-type]  # IPython's decorator types its own name
    def hooklab_magic(self, line: str) -> Any:
        """%hooklab SUBCOMMAND ...: ls, get, toggle, rotate, delete, url, events, requests,
        failures, replay, serve, stop. `%hooklab help` explains each."""
        words = shlex.split(line)
        if not words:
            return help_text()
        command = SUBCOMMANDS.get(words[0])
        if command is None:
            raise UsageError(f"%hooklab: unknown subcommand {words[0]!r}\n{help_text()}")
        try:
            return command(self.session, words[0], words[1:])
        except CommandUsageError as exc:
            raise UsageError(f"%hooklab {words[0]}: {exc}") from None
        except CommandFailed as exc:
            raise UsageError(str(exc)) from None
        except USER_ERRORS as exc:  # not found, invalid, refused: the one map's detail, one line
            raise UsageError(_detail(exc)) from None


def _detail(exc: BaseException) -> str:
    answer = answer_for(exc)
    return answer.detail if answer else str(exc)


def load(ipython: Any) -> HooklabMagics:
    """Register the magics and the HTML views; starts nothing."""
    from hooklab.notebook.reprs import register

    magics = HooklabMagics(ipython)
    ipython.register_magics(magics)
    register(ipython, magics.url_of)
    return magics


def unload(ipython: Any) -> None:
    for configurable in list(getattr(ipython, "configurables", [])):
        if isinstance(configurable, HooklabMagics):
            configurable.session.close()
    _ACTIVE.clear()
