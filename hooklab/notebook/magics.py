"""IPython magics: `%%webhook NAME` and `%hooklab <subcommand>`; glue between cells and the core.

`%load_ext hooklab` registers them and starts nothing; the first webhook starts the receiver on
the kernel's own loop. Settings go through traitlets: `%config HooklabMagics.port = 8765`.
"""

from __future__ import annotations

import argparse
import re
import shlex
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, cell_magic, line_magic, magics_class
from traitlets import Bool, Integer, Unicode, observe
from traitlets.config import Configurable

from hooklab.core.templates import TemplateError
from hooklab.core.times import parse_iso, utcnow
from hooklab.core.webhooks import Webhook
from hooklab.workspace import WebhookNotFound, Workspace, default_home

if TYPE_CHECKING:
    import pandas as pd

    from hooklab.server import Receiver


class _Parser(argparse.ArgumentParser):
    """argparse that reports a bad line as IPython's one-line UsageError, never SystemExit."""

    def error(self, message: str) -> Any:
        raise UsageError(f"{self.prog}: {message}\n{self.format_usage().strip()}")

    def exit(self, status: int = 0, message: str | None = None) -> Any:
        raise UsageError(message or self.format_usage().strip())


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
        parser = _Parser(prog="%%webhook", add_help=False)
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
        return command(self, words[1:])


class WebhookView:
    """What `%%webhook` shows: the URL, a curl command, and the compatibility check."""

    def __init__(self, hook: Webhook, verb: str, url: str | None) -> None:
        self.hook = hook
        self.verb = verb
        self.url = url

    def lines(self) -> list[str]:
        from hooklab.history.lint import check_template

        lines = [f"webhook {self.hook.name!r} {self.verb}"]
        if self.url:
            lines += [f"URL: {self.url}", f"from a terminal: {curl_command(self.hook, self.url)}"]
            lines.append(f"from a cell: await hooklab.send({self.url!r}, ...)")
        else:
            lines.append("no receiver running in this kernel: `%hooklab serve` or `hooklab serve`")
        findings = check_template(self.hook.template)
        lines += [str(f) for f in findings] or ["compatible with Prefect Cloud"]
        return lines

    def __repr__(self) -> str:
        return "\n".join(self.lines())

    def _repr_html_(self) -> str:
        from hooklab.notebook.reprs import webhook_html

        heading = f"<p>webhook <b>{_escape(self.hook.name)}</b> {self.verb}</p>"
        if self.url:
            heading += (
                f"<pre>{_escape(curl_command(self.hook, self.url))}</pre>"
                f"<p>from a cell: <code>await hooklab.send({_escape(repr(self.url))}, "
                "...)</code></p>"
            )
        return heading + webhook_html(self.hook, self.url)


def _escape(text: str) -> str:
    from html import escape

    return escape(text)


def curl_command(hook: Webhook, url: str) -> str:
    """A curl command that sends the fields the template reads, with placeholder values."""
    from hooklab.history.lint import referenced_fields

    body_paths = [keys for root, keys in referenced_fields(hook.template) if root == "body"]
    headers = [keys[0] for root, keys in referenced_fields(hook.template) if root == "headers"]
    parts = ["curl", "-X", "POST", shlex.quote(url)]
    for name in headers:
        if isinstance(name, str) and name.lower() != "content-type":
            parts += ["-H", shlex.quote(f"{name}: example")]
    if body_paths and all(len(p) == 1 and isinstance(p[0], str) for p in body_paths):
        for (key,) in body_paths:
            parts += ["-d", shlex.quote(f"{key}=example")]
    elif body_paths:
        import json

        parts += [
            "-H",
            "'Content-Type: application/json'",
            "-d",
            shlex.quote(json.dumps(_sample(body_paths))),
        ]
    return " ".join(parts)


def _sample(paths: list[tuple[Any, ...]]) -> dict[str, Any]:
    sample: dict[str, Any] = {}
    for keys in paths:
        node = sample
        names = [k for k in keys if isinstance(k, str)]
        for key in names[:-1]:
            child = node.setdefault(key, {})
            if not isinstance(child, dict):
                break
            node = child
        else:
            if names:
                node.setdefault(names[-1], "example")
    return sample


# Subcommands: plain functions of (magics, words), in one dispatch table.


def _webhook_arg(prog: str) -> _Parser:
    parser = _Parser(prog=f"%hooklab {prog}", add_help=False)
    parser.add_argument("name", help="the webhook's name, id or slug")
    return parser


def _hook(magics: HooklabMagics, key: str) -> Webhook:
    try:
        return magics.workspace.get_webhook(key)
    except WebhookNotFound as exc:
        raise UsageError(str(exc)) from None


def ls(magics: HooklabMagics, words: list[str]) -> pd.DataFrame:
    """ls: the webhooks, one row each."""
    import pandas as pd

    _Parser(prog="%hooklab ls", add_help=False).parse_args(words)
    rows = [
        {
            "name": hook.name,
            "enabled": hook.enabled,
            "url": magics.url_of(hook) or hook.path,
            "description": hook.description,
            "service_account_id": hook.service_account_id,
            "created": hook.created,
            "updated": hook.updated,
            "id": hook.id,
        }
        for hook in magics.workspace.list_webhooks()
    ]
    columns = ["name", "enabled", "url", "description", "service_account_id", "created", "updated"]
    return pd.DataFrame(rows, columns=[*columns, "id"])


def get(magics: HooklabMagics, words: list[str]) -> Webhook:
    """get NAME: the webhook (shown as a card)."""
    return _hook(magics, _webhook_arg("get").parse_args(words).name)


def toggle(magics: HooklabMagics, words: list[str]) -> None:
    """toggle NAME: enable or disable the webhook."""
    hook = _hook(magics, _webhook_arg("toggle").parse_args(words).name)
    hook = magics.workspace.toggle_webhook(hook.id)
    print(f"webhook {hook.name!r} is now {'enabled' if hook.enabled else 'disabled'}")


def rotate(magics: HooklabMagics, words: list[str]) -> str:
    """rotate NAME: a new URL; the old one stops working at once. Returns the new URL."""
    hook = _hook(magics, _webhook_arg("rotate").parse_args(words).name)
    hook = magics.workspace.rotate_webhook(hook.id)
    return magics.url_of(hook) or hook.path


def delete(magics: HooklabMagics, words: list[str]) -> None:
    """delete NAME: the webhook goes; what it captured stays in the history."""
    hook = _hook(magics, _webhook_arg("delete").parse_args(words).name)
    magics.workspace.delete_webhook(hook.id)
    print(f"webhook {hook.name!r} deleted; its history stays under id {hook.id}")


def url(magics: HooklabMagics, words: list[str]) -> str:
    """url NAME: the webhook's URL, as a string (`url = %hooklab url NAME`)."""
    hook = _hook(magics, _webhook_arg("url").parse_args(words).name)
    receiver = magics.receiver or magics.start_receiver()
    if receiver is None:
        raise UsageError("no receiver is running in this kernel: `%hooklab serve` first")
    return receiver.webhook_url(hook)


def _history_parser(prog: str, *, flatten: bool = True) -> _Parser:
    parser = _Parser(prog=f"%hooklab {prog}", add_help=False)
    parser.add_argument("name", nargs="?", default=None, help="only this webhook")
    parser.add_argument("--event", default=None, help="only events with this name")
    if flatten:
        parser.add_argument("--flatten", action="store_true", help="payload.* columns")
    parser.add_argument("--since", type=moment, default=None, help="ISO time, or 15m, 2h, 1d ago")
    parser.add_argument("--until", type=moment, default=None)
    return parser


def events(magics: HooklabMagics, words: list[str]) -> pd.DataFrame:
    """events [NAME] [--event E] [--since T] [--until T] [--flatten]: events as a DataFrame."""
    args = _history_parser("events").parse_args(words)
    return _events(magics, args, failed=None)


def failures(magics: HooklabMagics, words: list[str]) -> pd.DataFrame:
    """failures [NAME] [--since T] [--until T]: the failed requests' events, with their error."""
    args = _history_parser("failures").parse_args(words)
    return _events(magics, args, failed=True)


def _events(magics: HooklabMagics, args: argparse.Namespace, failed: bool | None) -> pd.DataFrame:
    if args.name is not None:
        _hook_or_history(magics, args.name)
    frame = magics.workspace.events(
        args.name, event=args.event, since=args.since, until=args.until, failed=failed
    )
    if args.flatten:
        from hooklab.store.frames import flatten_payload_columns

        frame = flatten_payload_columns(frame)
    return frame


def _hook_or_history(magics: HooklabMagics, key: str) -> None:
    """A name must be a webhook's; an id may also be a deleted webhook's history."""
    try:
        magics.workspace.get_webhook(key)
    except WebhookNotFound:
        if not re.fullmatch(r"[0-9a-f-]{36}", key):
            raise UsageError(f"no webhook named {key!r}") from None


def requests(magics: HooklabMagics, words: list[str]) -> pd.DataFrame:
    """requests [NAME] [--event E] [--since T] [--until T]: captured requests, a DataFrame.

    With --event, the requests that produced an event of that name."""
    args = _history_parser("requests", flatten=False).parse_args(words)
    if args.name is not None:
        _hook_or_history(magics, args.name)
    ws = magics.workspace
    frame = ws.requests(args.name, since=args.since, until=args.until)
    if args.event is not None:
        produced = ws.events(args.name, event=args.event, since=args.since, until=args.until)
        frame = frame[frame["id"].isin(set(produced["request_id"]))].reset_index(drop=True)
    return frame


def replay(magics: HooklabMagics, words: list[str]) -> Any:
    """replay NAME [--template VARIABLE] [--save]: NAME's captured requests, replayed.

    Through NAME's own template, or the one held in a notebook variable; --save stores the
    results as new requests."""
    from hooklab.history.replay import replay as run_replay

    parser = _webhook_arg("replay")
    parser.add_argument("--template", default=None, help="a variable holding a template")
    parser.add_argument("--save", action="store_true", help="store the results as new requests")
    args = parser.parse_args(words)
    hook = _hook(magics, args.name)
    template: str | Webhook = hook
    if args.template is not None:
        value = magics.shell.user_ns.get(args.template) if magics.shell else None
        if not isinstance(value, str):
            raise UsageError(f"--template {args.template}: no string variable of that name")
        template = value
    captured = magics.workspace.captured(hook.id)
    return run_replay(captured, template, workspace=magics.workspace, save=args.save)


def serve(magics: HooklabMagics, words: list[str]) -> str | None:
    """serve: start the in-kernel receiver (port from %config HooklabMagics.port); its URL."""
    _Parser(prog="%hooklab serve", add_help=False).parse_args(words)
    receiver = magics.start_receiver()
    return receiver.url if receiver is not None else None


def stop(magics: HooklabMagics, words: list[str]) -> None:
    """stop: stop the in-kernel receiver; what is pending is written first."""
    _Parser(prog="%hooklab stop", add_help=False).parse_args(words)
    if magics.receiver is None:
        print("hooklab: no receiver running")
        return
    magics.stop_receiver()
    print("hooklab receiver stopped")


def workspace(magics: HooklabMagics, words: list[str]) -> Workspace:
    """workspace: the Workspace the magics use, for the Python API (`ws = %hooklab workspace`)."""
    _Parser(prog="%hooklab workspace", add_help=False).parse_args(words)
    return magics.workspace


def help_text() -> str:
    lines = ["%hooklab SUBCOMMAND, where SUBCOMMAND is one of:"]
    for name, function in SUBCOMMANDS.items():
        first = (function.__doc__ or "").strip().splitlines()[0]
        lines.append(f"  {first}" if first.startswith(name) else f"  {name}: {first}")
    return "\n".join(lines)


class _Help:
    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text


def help_command(magics: HooklabMagics, words: list[str]) -> _Help:
    """help: this list."""
    return _Help(help_text())


def moment(text: str) -> datetime:
    """A time for --since/--until: ISO 8601 (UTC unless it says), or 30s, 15m, 2h, 1d ago."""
    match = re.fullmatch(r"(\d+)([smhd])", text.strip())
    if match:
        unit = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}[match.group(2)]
        return utcnow() - timedelta(**{unit: int(match.group(1))})
    try:
        return parse_iso(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a time: give ISO 8601 (2024-05-01T12:00) or 15m, 2h, 1d"
        ) from None


SUBCOMMANDS: dict[str, Callable[[HooklabMagics, list[str]], Any]] = {
    "ls": ls,
    "get": get,
    "toggle": toggle,
    "rotate": rotate,
    "delete": delete,
    "url": url,
    "events": events,
    "requests": requests,
    "failures": failures,
    "replay": replay,
    "serve": serve,
    "stop": stop,
    "workspace": workspace,
    "help": help_command,
}


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
