"""Forwarding in a process of its own: what `hooklab serve` runs beside its receiver.

In the receiver's process, the delivery thread shares the GIL with the event loop, and every
event it sends takes CPU from the loop's answers: with forwarding on, `hooklab serve` kept 0.92
of its throughput at best (benchmarks/bench_forwarding.py). A child process reads the outbox
from the same SQLite file (WAL lets it read while the receiver writes) and sends on its own CPU.

The server starts the child once the home forwards anywhere (`keep_running`, called every
second), and again if it dies. The child stops after the batch in flight when the server sends
it SIGTERM, and by itself when the server dies (its parent changes). It ignores SIGINT: Ctrl-C
reaches the whole terminal, and the server stops it in order. Its failures go to the
server's stderr once per episode (`hooklab.prefect.episodes`), its good news to the server's
log. Credentials the server holds (a password from `--forward-to`) reach it as JSON on its
stdin, never in its arguments, which every local user can read.

    python -m hooklab.prefect.process PATH/hooklab.db [--credentials-on-stdin]
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import IO, TYPE_CHECKING

from hooklab.core.errors import StoreError
from hooklab.prefect.client import Credentials
from hooklab.prefect.episodes import FailureLog
from hooklab.prefect.forwarding import STORE_BACK, STORE_DOWN, Forwarding, backoff
from hooklab.workspace import Workspace

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = ["ForwardingProcess", "main"]


class ForwardingProcess:
    """Runs `Forwarding` for the store of `workspace` in a child process; credentials come
    from `credentials` (per destination URL), else from the environment it inherits
    (PREFECT_API_KEY, PREFECT_API_AUTH_STRING). The child is told its store and credentials
    on its standard input, never on its command line, which other users may read."""

    def __init__(
        self,
        workspace: Workspace,
        credentials: dict[str, Credentials] | None = None,
        *,
        say: Callable[[str], object] | None = None,
        inform: Callable[[str], object] | None = None,
    ) -> None:
        # Where the child's lines (and the note that it ended) go, one call a line: the
        # server's log stamps them; its good news to `inform`. None: to this process's stderr.
        self.say = say
        self.inform = inform
        self.path = workspace.path
        self.target = workspace.store_url
        self.credentials = dict(credentials or {})
        self.outbox = workspace.outbox()
        self.restarts = 0
        self._process: subprocess.Popen[bytes] | None = None
        self._not_before = 0.0

    def __repr__(self) -> str:
        return f"ForwardingProcess({self.path!r}, running={self.running})"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def start(self) -> Self:
        if not self.running:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "hooklab.prefect.process"],
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=None if self.say is None else subprocess.PIPE,
            )
            if self.say is not None:
                assert self._process.stderr is not None
                threading.Thread(
                    target=_pass_lines,
                    args=(self._process.stderr, self.say, self.inform),
                    name="hooklab-forwarding-stderr",
                    daemon=True,
                ).start()
            assert self._process.stdin is not None
            told = {"store": self.target, "credentials": _credentials_json(self.credentials)}
            with self._process.stdin as pipe:
                pipe.write(json.dumps(told).encode())
        return self

    def keep_running(self) -> None:
        """Start the child if the home forwards anywhere and it is not running: the first
        time, and again (waiting longer each time) if it died."""
        process = self._process
        if process is not None and process.poll() is None:
            return
        if time.monotonic() < self._not_before:
            return
        try:
            if not self.outbox.urls():
                return
        except StoreError:
            return  # the store does not answer: the server says so; look again in a second
        if process is not None:
            self.restarts += 1
            self._not_before = time.monotonic() + backoff(self.restarts)
            ended = (
                f"hooklab: the forwarding process ended (status {process.returncode}); "
                "starting it again"
            )
            if self.say is not None:
                self.say(ended)
            else:
                print(ended, file=sys.stderr, flush=True)
            self._process = None
        self.start()

    def close(self, timeout: float = 15.0) -> None:
        """Stop after the batch in flight (what is pending stays in the outbox)."""
        process, self._process = self._process, None
        self.outbox.close()
        if process is None:
            return
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _pass_lines(
    stream: IO[bytes], say: Callable[[str], object], inform: Callable[[str], object] | None
) -> None:
    """Each line the child writes, until it closes its end: to `say`, or to `inform` when it
    is good news (a line that does not begin `hooklab: `, the mark of a warning)."""
    with stream:
        for line in stream:
            text = line.decode(errors="replace").rstrip("\r\n")
            if text:
                (say if inform is None or text.startswith("hooklab: ") else inform)(text)


def _line(text: str) -> None:
    """A line for the server's log: one that begins `hooklab: ` is a warning, any other is
    for information (`_pass_lines` tells them apart)."""
    print(text, file=sys.stderr, flush=True)


def failure_log(forwarding: Forwarding) -> FailureLog:
    """The child's log of failures: once per episode, reminders with what is pending."""

    def pending(url: str) -> int | None:
        try:
            found = forwarding.outbox.get(url)
        except StoreError:
            return None
        return None if found is None else found.pending

    log = FailureLog(warn=_line, inform=_line, pending=pending)

    def error(url: str, line: str) -> None:
        if line.startswith(STORE_DOWN):
            log.store_down(url, line)
        else:
            log.failed(url, line)

    def resumed(url: str, line: str) -> None:
        if line.startswith(STORE_BACK):
            log.store_back(url)
        else:
            log.resumed(url, line)

    forwarding.on_error, forwarding.on_resumed, forwarding.on_removed = error, resumed, log.removed
    return log


def _credentials_json(credentials: dict[str, Credentials]) -> dict[str, list[str | None]]:
    return {url: [found.api_key, found.auth_string] for url, found in credentials.items()}


def main(argv: list[str] | None = None) -> int:
    """The child: `{"store": ..., "credentials": {url: [api_key, auth_string]}}` on stdin."""
    args = sys.argv[1:] if argv is None else argv
    if args:
        print(
            "usage: python -m hooklab.prefect.process < STORE-AND-CREDENTIALS.json", file=sys.stderr
        )
        return 2
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    told = json.loads(sys.stdin.read() or "{}")
    credentials = {url: Credentials(*pair) for url, pair in told.get("credentials", {}).items()}
    workspace = Workspace(told["store"])
    forwarding = Forwarding(workspace, credentials=credentials)
    failure_log(forwarding)
    signal.signal(signal.SIGTERM, lambda *_: forwarding.stop_soon())
    parent = os.getppid()

    def watch_parent() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        forwarding.stop_soon()

    threading.Thread(target=watch_parent, name="hooklab-parent", daemon=True).start()
    try:
        forwarding.run()
    finally:
        forwarding.outbox.close()
        workspace.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
