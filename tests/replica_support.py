"""`hooklab serve --store URL` replicas for tests: real processes on real sockets, and small
HTTP helpers to reach them."""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from cli_support import served_url

ADMIN = "replica-test-key"
FORM = "application/x-www-form-urlencoded"


class Replica:
    """One `hooklab serve --store URL` process; what it prints to stderr goes to a file."""

    def __init__(
        self, home: Path, store: str, *args: str, env: dict[str, str] | None = None
    ) -> None:
        home.mkdir(exist_ok=True)
        self.home, self.store, self.args, self.env = home, store, args, env or {}
        self.errors = home.parent / f"{home.name}.stderr"
        self.process: subprocess.Popen[str] | None = None
        self.base = ""

    def start(self) -> Replica:
        command = [sys.executable, "-m", "hooklab.server", "--port", "0"]
        command += ["--store", self.store, "--home", str(self.home), *self.args]
        with self.errors.open("a") as errors:
            self.process = subprocess.Popen(
                command,
                stdout=subprocess.PIPE,
                stderr=errors,
                text=True,
                env={**os.environ, "HOOKLAB_ADMIN_KEY": ADMIN, **self.env},
                start_new_session=True,  # a group of its own: `kill()` takes its children too
            )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        assert "hooklab serving at http://127.0.0.1:" in line, self.said()
        self.base = served_url(line)
        # The rest of what it prints is read by a thread, so a full pipe never blocks it.
        self.reader = threading.Thread(target=self.process.stdout.read, daemon=True)
        self.reader.start()
        return self

    @property
    def port(self) -> int:
        return int(self.base.rsplit(":", 1)[1])

    def said(self) -> str:
        return self.errors.read_text() if self.errors.exists() else ""

    def kill(self) -> int:
        """SIGKILL to the replica and its forwarding process at once, as a machine dies."""
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        return self.stop(signal.SIGKILL)

    def stop(self, signum: int = signal.SIGTERM) -> int:
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signum)
        code = self.process.wait(timeout=30)
        self.reader.join(timeout=10)
        assert self.process.stdout is not None
        self.process.stdout.close()
        return code


@contextmanager
def replicas(
    tmp_path: Path, store: str, count: int = 2, *args: str, env: dict[str, str] | None = None
) -> Iterator[list[Replica]]:
    started: list[Replica] = []
    try:
        for n in range(count):
            started.append(Replica(tmp_path / f"home{n}", store, *args, env=env).start())
        yield started
    finally:
        for replica in started:
            if replica.process is not None and not replica.process.stdout.closed:  # type: ignore[union-attr]
                replica.kill()


def call(
    base: str, method: str, path: str, body: bytes | None = None, **headers: str
) -> tuple[int, dict[str, str], bytes]:
    """One request on a fresh connection: status, headers, body (a bounded wait)."""
    connection = http.client.HTTPConnection(base.removeprefix("http://"), timeout=10)
    try:
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def api(base: str, method: str, path: str, payload: Any = None) -> Any:
    body = None if payload is None else json.dumps(payload).encode()
    status, _, answer = call(
        base,
        method,
        f"/api{path}",
        body,
        Authorization=f"Bearer {ADMIN}",
        **{"Content-Type": "application/json"},
    )
    assert status < 300, (status, answer)
    return json.loads(answer) if answer else None


def post(
    base: str,
    slug: str,
    body: bytes = b"model=m&friendly_name=M",
    key: str | None = None,
    content_type: str = FORM,
) -> int:
    headers = {"Content-Type": content_type, **({"Authorization": f"Bearer {key}"} if key else {})}
    return call(base, "POST", f"/hooks/{slug}", body, **headers)[0]


def seconds_until(condition: Callable[[], bool], limit: float = 5.0) -> float:
    """How long until `condition()` held, polled every 10 ms; fails after `limit` seconds."""
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < limit, "never happened"
        time.sleep(0.01)
    return time.monotonic() - started
