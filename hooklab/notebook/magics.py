"""IPython magics: `%%webhook NAME` and `%hooklab <subcommand>`; glue between cells and the core.

`%load_ext hooklab` registers them and starts nothing; the first webhook starts the receiver on
the kernel's own loop. Settings go through traitlets: `%config HooklabMagics.port = 8765`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, cell_magic, line_magic, magics_class
from traitlets import Bool, Integer, Unicode, observe, validate
from traitlets.config import Configurable

from hooklab.core.errors import EXPECTED, answer_for
from hooklab.core.templates import TemplateError
from hooklab.core.webhooks import Webhook
from hooklab.notebook.subcommands import SUBCOMMANDS, Parser, help_text
from hooklab.notebook.webhookview import WebhookView
from hooklab.store import without_password
from hooklab.workspace import WebhookNotFound, Workspace, default_home, store_target

if TYPE_CHECKING:
    from hooklab.prefect import Credentials, Forwarding
    from hooklab.server import Receiver
    from hooklab.server.registry import Served

SHARED_CHECK_SECONDS = 2.0
_ACTIVE: list[HooklabMagics] = []  # the magics `%load_ext hooklab` registered in this kernel


def active() -> HooklabMagics | None:
    """The magics of this kernel, once `%load_ext hooklab` has run."""
    return _ACTIVE[0] if _ACTIVE else None


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
        self._workspace: Workspace | None = None
        self._receiver: Receiver | None = None
        self._shared: Served | None = None  # another process's receiver serving this home
        self._watch: asyncio.TimerHandle | None = None
        # Why the receiver could not store a request, each cause once: shown after the next
        # cell runs, in its output (a callback's own output would land under an old cell).
        self._store_warnings: list[str] = []
        self._forwarding: Forwarding | None = None
        shell.events.register("post_run_cell", self._show_store_warnings)
        _ACTIVE[:] = [self]

    # What the magics share, made on first use

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
        shared: the trait holds the URL without its password, kept here instead."""
        url = str(proposal["value"])
        shown = without_password(url)
        if shown != url:
            self._store_urls = {**getattr(self, "_store_urls", {}), shown: url}
        return shown

    @property
    def workspace(self) -> Workspace:
        if self._workspace is None:
            if self.deterministic:
                from hooklab.notebook.deterministic import deterministic_workspace

                self._workspace = deterministic_workspace(self.target, home=self.folder)
            else:
                self._workspace = Workspace(self.target, home=self.folder)
        return self._workspace

    @property
    def receiver(self) -> Receiver | None:
        return self._receiver if self._receiver is not None and self._receiver.running else None

    def start_receiver(self) -> Receiver | None:
        """Make sure this home is served, once: by the receiver another kernel or `hooklab
        serve` runs for it (then its URL is used), else by one started here on the kernel's
        loop, on the port the home had last. None (with a note) when there is no loop."""
        if self.receiver is not None:
            return self.receiver
        from hooklab.server import NoRunningLoop, PortInUse, Receiver, ReceiverError, registry

        self.workspace  # noqa: B018  # opens (and creates) the home before it is claimed
        served = registry.running(self.folder)
        if served is not None and served.pid != os.getpid():
            if self._shared != served:
                print(f"hooklab: this home is served at {served.url} (process {served.pid})")
            self._shared = served
            self._watch_shared()
            return None
        self._shared = None
        remembered = None if self.port else registry.remembered_port(self.folder, self.host)
        port = self.port or remembered or 0
        try:
            receiver = self._listen(Receiver, port)
        except NoRunningLoop as exc:
            print(f"hooklab: receiver not started: {exc}")
            return None
        except PortInUse as exc:
            if remembered is None:
                raise UsageError(str(exc)) from None
            print(f"hooklab: port {port}, this home's last, is taken by another program")
            receiver = self._listen(Receiver, 0)
        except ReceiverError as exc:
            raise UsageError(str(exc)) from None
        print(f"hooklab receiver listening at {receiver.url}")
        return receiver

    def _listen(self, receiver_class: type[Receiver], port: int) -> Receiver:
        from hooklab.notebook import sending

        receiver = receiver_class(self.workspace, host=self.host, port=port, verbose=self.verbose)
        receiver.on_store_error = self._store_warnings.append
        receiver.start()
        sending.watch(receiver)
        self._receiver = receiver
        return receiver

    def _show_store_warnings(self, _result: object = None) -> None:
        warnings = list(self._store_warnings)
        self._store_warnings.clear()  # the same list: the receiver appends to it
        for cause in warnings:
            print(
                "hooklab warning: a request to this kernel's receiver could not be stored and "
                f"was answered 503, so its sender will retry ({cause})",
                file=sys.stderr,
                flush=True,
            )

    def _watch_shared(self) -> None:
        """While another process serves the home, look every few seconds whether it still does;
        when it is gone, serve the home from here, on the same port: the URLs stay."""
        if self._watch is not None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        self._watch = loop.call_later(SHARED_CHECK_SECONDS, self._check_shared)

    def _check_shared(self) -> None:
        self._watch = None
        shared = self._shared
        if shared is None:
            return
        if shared.is_alive():
            self._watch_shared()
            return
        self._shared = None
        self.start_receiver()

    def stop_receiver(self) -> None:
        from hooklab.notebook import sending

        if self._watch is not None:
            self._watch.cancel()
            self._watch = None
        self._shared = None
        if self._receiver is not None:
            self._receiver.stop()
            sending.unwatch(self._receiver)
            self._receiver = None

    @property
    def base_url(self) -> str | None:
        """Where senders reach this home: the public URL when one is set (a tunnel), else the
        receiver serving the home, here or in another process."""
        if self.public_url:
            return self.public_url.rstrip("/")
        if self.receiver is not None:
            return self.receiver.url
        return self._shared.url if self._shared is not None else None

    def url_of(self, hook: Webhook) -> str | None:
        base = self.base_url
        return f"{base}/hooks/{hook.slug}" if base is not None else None

    @observe("home", "store", "deterministic")
    def _new_workspace(self, change: Any) -> None:
        if change and change["name"] == "deterministic" and change["new"]:
            from hooklab.notebook.deterministic import NOTICE

            print(NOTICE)  # where it is switched on: a copied cell says what it does
        self.stop_receiver()
        if self._forwarding is not None:
            self._forwarding.close()
            self._forwarding = None
        if self._workspace is not None:
            self._workspace.close()
            self._workspace = None

    @observe("host", "port")
    def _new_address(self, _change: Any) -> None:
        self.stop_receiver()

    @observe("forward_to")
    def _new_destination(self, change: Any) -> None:
        if change["new"]:
            self.forward(change["new"])

    def forward(self, url: str, credentials: Credentials | None = None) -> None:
        """Record `url` as a destination of this home and deliver from this kernel (a thread)."""
        from hooklab.prefect import Forwarding
        from hooklab.prefect.client import split_credentials

        stored = self.workspace.count("events")
        self.workspace.forward_to(url)
        if self._forwarding is None:
            self._forwarding = Forwarding(self.workspace)
        self._forwarding.add(url, credentials)  # a password in the URL stays in memory
        self._forwarding.start()
        if stored:  # the history stays behind: say so, and how to send it
            shown = split_credentials(url)[0]
            print(
                f"hooklab: forwarding to {shown} the events stored from now on; the {stored} "
                f"stored before stay here (`hooklab forward --to {shown}` sends them once)"
            )

    @observe("verbose")
    def _new_verbosity(self, change: Any) -> None:
        if self._receiver is not None:
            self._receiver.verbose = bool(change["new"])

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
        except EXPECTED as exc:  # a name several webhooks share, say
            raise UsageError(_detail(exc)) from None
        self.start_receiver()
        from IPython.display import display

        display(WebhookView(hook, verb, self.url_of(hook)))

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
            return command(self, words[1:])
        except EXPECTED as exc:  # not found, invalid, refused: the one map's detail, one line
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
            configurable.stop_receiver()
            with contextlib.suppress(ValueError):  # already gone at an earlier unload
                ipython.events.unregister("post_run_cell", configurable._show_store_warnings)
    _ACTIVE.clear()
