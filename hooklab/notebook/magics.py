"""IPython magics: `%%webhook NAME` and `%hooklab <subcommand>`; glue between cells and the core.

`%load_ext hooklab` registers them and starts nothing; the first webhook starts the receiver on
the kernel's own loop. Settings go through traitlets: `%config HooklabMagics.port = 8765`.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import TYPE_CHECKING, Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, cell_magic, line_magic, magics_class
from traitlets import Bool, Integer, Unicode, observe
from traitlets.config import Configurable

from hooklab.core.errors import EXPECTED, answer_for
from hooklab.core.templates import TemplateError
from hooklab.core.webhooks import Webhook
from hooklab.notebook.subcommands import SUBCOMMANDS, Parser, help_text
from hooklab.notebook.webhookview import WebhookView
from hooklab.workspace import WebhookNotFound, Workspace, default_home

if TYPE_CHECKING:
    from hooklab.server import Receiver


@magics_class
class HooklabMagics(Magics, Configurable):
    """hooklab in a notebook. `%hooklab help` lists the subcommands."""

    home = Unicode(
        "", help="Folder of the workspace file; default $HOOKLAB_HOME or ~/.hooklab"
    ).tag(config=True)
    host = Unicode("127.0.0.1", help="Address the in-kernel receiver listens on").tag(config=True)
    port = Integer(0, help="Port of the in-kernel receiver; 0 picks a free one").tag(config=True)
    verbose = Bool(False, help="Put the error text in the body of 400 answers").tag(config=True)
    deterministic = Bool(
        False, help="Seeded ids and a fixed clock, so saved outputs stay the same (nbval)"
    ).tag(config=True)

    def __init__(self, shell: Any) -> None:
        Configurable.__init__(self, config=shell.config)
        Magics.__init__(self, shell=shell)
        shell.configurables.append(self)  # so that %config lists and sets these traits
        self._workspace: Workspace | None = None
        self._receiver: Receiver | None = None

    # What the magics share, made on first use

    @property
    def workspace(self) -> Workspace:
        if self._workspace is None:
            folder = Path(self.home).expanduser() if self.home else default_home()
            if self.deterministic:
                from hooklab.notebook.deterministic import deterministic

                clock, new_id = deterministic()
                self._workspace = Workspace(folder / "hooklab.db", clock=clock, new_id=new_id)
            else:
                self._workspace = Workspace(folder / "hooklab.db")
        return self._workspace

    @property
    def receiver(self) -> Receiver | None:
        return self._receiver if self._receiver is not None and self._receiver.running else None

    def start_receiver(self) -> Receiver | None:
        """Start the receiver on the running loop once; None (with a note) when there is none."""
        if self.receiver is not None:
            return self.receiver
        from hooklab.notebook import sending
        from hooklab.server import NoRunningLoop, Receiver, ReceiverError

        receiver = Receiver(self.workspace, host=self.host, port=self.port, verbose=self.verbose)
        try:
            receiver.start()
        except NoRunningLoop as exc:
            print(f"hooklab: receiver not started: {exc}")
            return None
        except ReceiverError as exc:
            raise UsageError(str(exc)) from None
        sending.watch(receiver)
        self._receiver = receiver
        print(f"hooklab receiver listening at {receiver.url}")
        return receiver

    def stop_receiver(self) -> None:
        from hooklab.notebook import sending

        if self._receiver is not None:
            self._receiver.stop()
            sending.unwatch(self._receiver)
            self._receiver = None

    def url_of(self, hook: Webhook) -> str | None:
        receiver = self.receiver
        return receiver.webhook_url(hook) if receiver is not None else None

    @observe("home", "deterministic")
    def _new_workspace(self, _change: Any) -> None:
        self.stop_receiver()
        if self._workspace is not None:
            self._workspace.close()
            self._workspace = None

    @observe("host", "port")
    def _new_address(self, _change: Any) -> None:
        self.stop_receiver()

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

        display(WebhookView(hook, verb, self.url_of(hook)))  # type: ignore[no-untyped-call]

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
