"""The hooklab server: the receiver's `/hooks` and the management API's `/api` on one port.

What a notebook (`%hooklab`) and `hooklab serve` start:

>>> receiver = Receiver(workspace).start()          # doctest: +SKIP
>>> receiver.webhook_url(hook)                      # doctest: +SKIP
'http://127.0.0.1:54321/hooks/AERylZ_uewzpDx-8fcweHQ'
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

from tornado.httputil import HTTPHeaders

from hooklab.core.errors import NotWritable
from hooklab.server import registry
from hooklab.server.api import admin_key, api_routes, early_refusal
from hooklab.server.connections import EarlyAnswer
from hooklab.server.health import health_route
from hooklab.server.receiver import HookReceiver, ReceiverError, ReceiverOptions, Rule
from hooklab.store import is_postgres
from hooklab.store.home import HomeInUse, HomeLock, hold_home
from hooklab.workspace import Workspace, default_home

if TYPE_CHECKING:
    from typing_extensions import Self, Unpack  # typing's own from Python 3.11

# Threads for the management API's calls to the store (made as calls come, up to this many).
# The store takes one call at a time, and when it does not answer, fails at once every call
# then waiting for it: threads enough that a burst of calls waits there, not in a queue here.
API_THREADS = 16


class Receiver(HookReceiver):
    """Serves a workspace's webhooks and its management API over HTTP on the running loop."""

    def __init__(
        self,
        workspace: Workspace,
        *,
        admin_key: str | None = None,
        **options: Unpack[ReceiverOptions],
    ) -> None:
        super().__init__(workspace, **options)
        self._admin_key = admin_key
        self._home_lock: HomeLock | None = None
        # The management API's calls to the store, off the event loop (see `ApiHandler`).
        self._api_calls: ThreadPoolExecutor | None = None

    @property
    def admin_key(self) -> str:
        """The key the management API asks for; kept under the workspace's home."""
        if self._admin_key is None:
            self._admin_key = admin_key(workspace_home(self.workspace))
        return self._admin_key

    def start(self) -> Self:
        """Bind and serve, and record in the home that this process serves it there (so other
        kernels use this URL, and a restart takes the same port). Refused (`ReceiverError`)
        while another process serves the home, or when the home cannot be written."""
        started = not self.running
        if started and self.workspace.home is not None:
            self._home_lock = hold_home_for(self.workspace)
        try:
            super().start()
        except BaseException:
            self._release_home()
            raise
        if started and self.workspace.home is not None and self.port is not None:
            store = self.workspace.store
            elsewhere = store.location if is_postgres(store.url) else None
            registry.claim(self.workspace.home, self.host, self.port, store=elsewhere)
        return self

    def stop(self) -> None:
        port = self.port if self.running else None
        super().stop()
        if port is not None and self.workspace.home is not None:
            registry.release(self.workspace.home, port)
        self._release_home()
        calls, self._api_calls = self._api_calls, None
        if calls is not None:
            calls.shutdown(wait=False, cancel_futures=True)

    def _release_home(self) -> None:
        lock, self._home_lock = self._home_lock, None
        if lock is not None:
            lock.release()

    def routes(self) -> list[Rule]:
        # The key is read on the first API call, so a receiver nobody administers makes no file.
        if self._api_calls is None:
            self._api_calls = ThreadPoolExecutor(API_THREADS, thread_name_prefix="hooklab-api")
        api = api_routes(self.workspace, lambda: self.admin_key, self._api_calls)
        return [health_route(self), *api]

    def early_answer(self, method: str, path: str, headers: HTTPHeaders) -> EarlyAnswer | None:
        """The API asks for its key when the headers arrive, before it reads any body."""
        refused = early_refusal(path, headers.get("Authorization"), lambda: self.admin_key)
        if refused is not None:
            return EarlyAnswer(401, refused, "application/json")
        declared = headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > self.max_body:
            return self.body_too_large(path)
        return None

    def body_too_large(self, path: str) -> EarlyAnswer:
        if not path.startswith("/api"):
            return super().body_too_large(path)
        detail = f"The body is larger than the limit of {self.max_body} bytes"
        return EarlyAnswer(413, json.dumps({"detail": detail}).encode(), "application/json")


def hold_home_for(workspace: Workspace) -> HomeLock:
    """The home's lock for a receiver of this workspace, or `ReceiverError` in one line: the
    home is served by another process (here or in another container), or cannot be written."""
    if workspace.store.read_only is not None:
        raise ReceiverError(f"{workspace.store.read_only}; a receiver must store what it receives")
    try:
        return hold_home(workspace_home(workspace))
    except (HomeInUse, NotWritable) as exc:
        raise ReceiverError(str(exc)) from None


def workspace_home(workspace: Workspace) -> Path:
    """The hooklab home of a workspace: the folder of its database file, or the home it was
    given; `$HOOKLAB_HOME` (else `~/.hooklab`) for one without."""
    return workspace.home if workspace.home is not None else default_home()
