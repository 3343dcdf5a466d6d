"""The kernel's hooklab session: its workspace, the receiver serving its home (here, or in
another process that took it), forwarding from the kernel, and the store warnings of a cell.

The magics parse cells and lines and show results; what lives as long as the kernel lives here.
It reads its settings (home, store, host, port, ...) from `HooklabMagics`'s traits when it needs
them, so `%config` changes apply to the next use.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from IPython.core.error import UsageError

from hooklab.core.webhooks import Webhook
from hooklab.workspace import Workspace

if TYPE_CHECKING:
    from hooklab.prefect import Credentials, Forwarding
    from hooklab.server import Receiver
    from hooklab.server.registry import Served

SHARED_CHECK_SECONDS = 2.0


class Settings(Protocol):
    """What the session reads of its settings (`HooklabMagics`'s traits)."""

    @property
    def host(self) -> str: ...
    @property
    def port(self) -> int: ...
    @property
    def public_url(self) -> str: ...
    @property
    def verbose(self) -> bool: ...
    @property
    def deterministic(self) -> bool: ...
    @property
    def folder(self) -> Path: ...
    @property
    def target(self) -> str: ...


class KernelSession:
    """hooklab as long as this kernel runs: made on first use, reset when its settings change.

    The shell is kept for the notebook's variables (`%hooklab replay NAME --template VAR`).
    """

    def __init__(self, shell: Any, settings: Settings) -> None:
        self.shell = shell
        self.settings = settings
        self._workspace: Workspace | None = None
        self._receiver: Receiver | None = None
        self._shared: Served | None = None  # another process's receiver serving this home
        self._watch: asyncio.TimerHandle | None = None
        # Why the receiver could not store a request, each cause once: shown after the next
        # cell runs, in its output (a callback's own output would land under an old cell).
        self._store_warnings: list[str] = []
        self._forwarding: Forwarding | None = None
        shell.events.register("post_run_cell", self.show_store_warnings)

    @property
    def workspace(self) -> Workspace:
        """The workspace of the home and store the settings name, opened on first use."""
        if self._workspace is None:
            folder, target = self.settings.folder, self.settings.target
            if self.settings.deterministic:
                from hooklab.notebook.deterministic import deterministic_workspace

                self._workspace = deterministic_workspace(target, home=folder)
            else:
                self._workspace = Workspace(target, home=folder)
        return self._workspace

    @property
    def receiver(self) -> Receiver | None:
        """The receiver this kernel runs, while it runs."""
        return self._receiver if self._receiver is not None and self._receiver.running else None

    def start_receiver(self) -> Receiver | None:
        """Make sure this home is served, once: by the receiver another kernel or `hooklab
        serve` runs for it (then its URL is used), else by one started here on the kernel's
        loop, on the port the home had last. None (with a note) when there is no loop."""
        if self.receiver is not None:
            return self.receiver
        from hooklab.server import NoRunningLoop, PortInUse, Receiver, ReceiverError, registry

        folder, host, port = self.settings.folder, self.settings.host, self.settings.port
        self.workspace  # noqa: B018  # opens (and creates) the home before it is claimed
        served = registry.running(folder)
        if served is not None and served.pid != os.getpid():
            if self._shared != served:
                print(f"hooklab: this home is served at {served.url} (process {served.pid})")
            self._shared = served
            self._watch_shared()
            return None
        self._shared = None
        remembered = None if port else registry.remembered_port(folder, host)
        port = port or remembered or 0
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

        receiver = receiver_class(
            self.workspace, host=self.settings.host, port=port, verbose=self.settings.verbose
        )
        receiver.on_store_error = self._store_warnings.append
        receiver.start()
        sending.watch(receiver)
        self._receiver = receiver
        return receiver

    def show_store_warnings(self, _result: object = None) -> None:
        """After a cell: why requests to this kernel's receiver could not be stored, once each."""
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
        """Stop serving from here (what is pending is written first), and stop watching
        another process's receiver."""
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
        if self.settings.public_url:
            return self.settings.public_url.rstrip("/")
        if self.receiver is not None:
            return self.receiver.url
        return self._shared.url if self._shared is not None else None

    def url_of(self, hook: Webhook) -> str | None:
        """The webhook's URL, when something serves this home."""
        base = self.base_url
        return f"{base}/hooks/{hook.slug}" if base is not None else None

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

    def set_verbose(self, verbose: bool) -> None:
        """Whether the running receiver puts the error text in the body of 400 answers."""
        if self._receiver is not None:
            self._receiver.verbose = verbose

    def reset(self) -> None:
        """Stop serving and forwarding and close the workspace: the next use opens the home
        and store the settings name then."""
        self.stop_receiver()
        if self._forwarding is not None:
            self._forwarding.close()
            self._forwarding = None
        if self._workspace is not None:
            self._workspace.close()
            self._workspace = None

    def close(self) -> None:
        """At `%unload_ext`: stop the receiver and hear no more cells."""
        self.stop_receiver()
        with contextlib.suppress(ValueError):  # already gone at an earlier unload
            self.shell.events.unregister("post_run_cell", self.show_store_warnings)
