"""Running the real `hooklab` command in tests: a clean environment, a pipe or a terminal."""

from __future__ import annotations

import os
import pty
import re
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

TEMPLATE = (
    '{"event": "model-update", "resource": {"prefect.resource.id": '
    '"product.models.{{ body.model }}"}}'
)

Run = Callable[..., subprocess.CompletedProcess[str]]
_SERVING = re.compile(r"hooklab serving at (http://\S+)")
_STAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z ")


def untimed(text: str) -> list[str]:
    """The lines `hooklab serve` wrote, each without the time it begins with."""
    return [
        _STAMP.sub("", line, count=1) if _STAMP.match(line) else line for line in text.splitlines()
    ]


def served_url(line: str) -> str:
    """The base URL on `hooklab serve`'s first line (`... hooklab serving at URL (why)`)."""
    found = _SERVING.search(line)
    assert found is not None, line
    return found.group(1)


def base_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOOKLAB_")}
    env.update(COLUMNS="200", **extra)
    return env


def run_cli(env: dict[str, str], *args: str, input: str = "") -> subprocess.CompletedProcess[str]:
    """`python -m hooklab ...` with stdin from a pipe (not a terminal)."""
    return subprocess.run(
        [sys.executable, "-m", "hooklab", *args],
        input=input,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


def run_with_terminal_stdin(env: dict[str, str], *args: str, answer: str) -> tuple[int, str, str]:
    """Run the CLI with a pseudo-terminal as stdin, typing `answer` into it."""
    controller, terminal = pty.openpty()
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "hooklab", *args],
            stdin=terminal,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        os.write(controller, answer.encode())
        out, err = process.communicate(timeout=60)
    finally:
        os.close(terminal)
        os.close(controller)
    return process.returncode, out, err


def run_with_terminal_stderr(env: dict[str, str], *args: str) -> tuple[int, str]:
    """Run the CLI with a pseudo-terminal as stderr; returns the status and what it showed."""
    controller, terminal = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "hooklab", *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=terminal,
        env=env,
    )
    os.close(terminal)
    shown = b""
    while True:
        try:
            chunk = os.read(controller, 4096)
        except OSError:  # the terminal closed with the process
            break
        if not chunk:
            break
        shown += chunk
    os.close(controller)
    return process.wait(timeout=60), shown.decode()


@contextmanager
def hooklab_server(home: Path, admin_key: str) -> Iterator[str]:
    """A real `python -m hooklab.server` on a free loopback port; yields its base URL, and
    stops it (SIGINT, then a kill if it lingers) however the test ends, startup failures too."""
    process = subprocess.Popen(
        [sys.executable, "-m", "hooklab.server", "--home", str(home), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=base_env(HOOKLAB_ADMIN_KEY=admin_key),
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert "hooklab serving at " in line, line
        yield served_url(line)
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()
