"""A real `prefect server start` on loopback, with basic auth on, for the bridge's tests."""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

AUTH = "user:pass"
STARTUP_SECONDS = 90


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def prefect_command() -> list[str] | None:
    """How to run Prefect's CLI from this environment, or None when prefect is missing."""
    try:
        import prefect  # noqa: F401
    except ImportError:
        return None
    script = Path(sys.executable).with_name("prefect")
    return [str(script)] if script.exists() else [shutil.which("prefect") or "prefect"]


class PrefectServer:
    """`prefect server start` in a home of its own; stop() and start() keep its database."""

    def __init__(self, home: Path, command: list[str]) -> None:
        self.home = home
        self.command = command
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/api"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> PrefectServer:
        env = {
            **os.environ,
            "PREFECT_HOME": str(self.home),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_SERVER_API_AUTH_STRING": AUTH,
            "PREFECT_API_URL": self.url,
            "PREFECT_API_AUTH_STRING": AUTH,
        }
        log = (self.home / "server.log").open("ab")
        self.process = subprocess.Popen(
            [*self.command, "server", "start", "--host", "127.0.0.1", "--port", str(self.port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=self.home,
            start_new_session=True,  # a group of its own, for `kill`
        )
        log.close()
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError((self.home / "server.log").read_text()[-2000:])
            try:
                self.call("GET", "/health")
                return self
            except (OSError, urllib.error.URLError):
                time.sleep(0.5)
        raise RuntimeError("prefect server did not answer /api/health in time")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.process = None

    def kill(self) -> None:
        """SIGKILL to the server's whole process group: no flush, no goodbye."""
        if self.process is not None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
        self.process = None

    def call(self, method: str, path: str, body: Any = None) -> Any:
        """Prefect's API with basic auth, as its own client calls it."""
        request = urllib.request.Request(
            self.url + path,
            data=None if body is None else json.dumps(body).encode(),
            method=method,
            headers={
                "Authorization": "Basic " + base64.b64encode(AUTH.encode()).decode(),
                "Content-Type": "application/json",
            },
        )
        with urllib.request.urlopen(request, timeout=10) as answer:
            text = answer.read()
        return json.loads(text) if text else None

    def event_ids(self, prefix: str) -> list[str]:
        """The ids of every stored event whose name starts with `prefix`, repeats kept."""
        body = {
            "filter": {
                "occurred": {"since": "2000-01-01T00:00:00Z", "until": "2100-01-01T00:00:00Z"},
                "event": {"prefix": [prefix]},
            },
            "limit": 50,
        }
        page = self.call("POST", "/events/filter", body)
        ids = [e["id"] for e in page["events"]]
        while page.get("next_page"):
            next_path = page["next_page"].split("/api", 1)[1]
            page = self.call("GET", next_path)
            ids += [e["id"] for e in page["events"]]
        return ids

    def wait_for_events(self, prefix: str, count: int, timeout: float = 60) -> list[str]:
        """Prefect writes events a moment after taking them: wait until `count` are there."""
        deadline = time.monotonic() + timeout
        ids = self.event_ids(prefix)
        while len(ids) < count and time.monotonic() < deadline:
            time.sleep(0.5)
            ids = self.event_ids(prefix)
        return ids
