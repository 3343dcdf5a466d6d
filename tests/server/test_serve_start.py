"""What `hooklab serve` says and does as it starts: the port it takes and why, as a real process."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from cli_support import base_env, served_url

from hooklab.server import registry
from hooklab.server.serve import DEFAULT_PORT, choose_port

ADMIN = "start-test-key"


@contextmanager
def serving(home: Path, *args: str) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """`python -m hooklab.server --home HOME ARGS`; yields it and its first line, and stops it."""
    process = subprocess.Popen(
        [sys.executable, "-m", "hooklab.server", "--home", str(home), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=base_env(HOOKLAB_ADMIN_KEY=ADMIN),
    )
    try:
        assert process.stdout is not None and process.stderr is not None
        first = process.stdout.readline()
        assert "hooklab serving at" in first, process.stderr.read()
        yield process, first
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        process.communicate(timeout=30)


def answers(url: str) -> bool:
    host, port = url.removeprefix("http://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=5) as conn:
        conn.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        return conn.recv(100).startswith(b"HTTP/1.1 200")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_a_plain_serve_takes_the_port_the_home_was_last_served_on_and_says_so(
    tmp_path: Path,
) -> None:
    with serving(tmp_path, "--port", "0") as (_, first):
        url = served_url(first)
        assert first.rstrip().endswith(f"{url} (a free port, from --port 0)")
    with serving(tmp_path) as (_, again):  # no --port: the URLs senders were given hold
        assert served_url(again) == url and answers(url)
        assert again.rstrip().endswith(
            "(the port this home was last served on; --port chooses another)"
        )


def test_a_port_remembered_from_a_notebook_on_another_address_is_taken_too(
    tmp_path: Path,
) -> None:
    port = free_port()
    # What a notebook's receiver leaves in the home once its kernel is gone.
    registry.claim(tmp_path, "localhost", port, pid=999_999_999)
    registry.release(tmp_path, port, pid=999_999_999)
    with serving(tmp_path) as (_, first):
        assert served_url(first) == f"http://127.0.0.1:{port}"


def test_port_given_wins_over_the_remembered_one(tmp_path: Path) -> None:
    registry.claim(tmp_path, "127.0.0.1", free_port(), pid=999_999_999)
    given = free_port()
    with serving(tmp_path, "--port", str(given)) as (_, first):
        assert served_url(first) == f"http://127.0.0.1:{given}"
        assert first.rstrip().endswith("(from --port)")
    assert registry.remembered_port(tmp_path, None) == given  # and the next start takes it


def test_a_remembered_port_another_program_holds_is_refused_not_swapped(tmp_path: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        registry.claim(tmp_path, "127.0.0.1", port, pid=999_999_999)
        result = subprocess.run(
            [sys.executable, "-m", "hooklab.server", "--home", str(tmp_path)],
            capture_output=True,
            text=True,
            timeout=30,
            env=base_env(HOOKLAB_ADMIN_KEY=ADMIN),
        )
    assert result.returncode == 1, result.stdout
    assert result.stderr.strip().endswith(
        f"hooklab: port {port}, where this home was last served (its webhooks' URLs use it), "
        "is taken by another program: stop that program, or choose a port with --port"
    )


def test_a_home_never_served_takes_the_default_port(tmp_path: Path) -> None:
    assert choose_port(tmp_path, None) == (DEFAULT_PORT, "default")
    assert choose_port(tmp_path, 0) == (0, "given")
    os.mkdir(tmp_path / "elsewhere")
    registry.claim(tmp_path / "elsewhere", "127.0.0.1", 4321, pid=999_999_999)
    assert choose_port(tmp_path / "elsewhere", None) == (4321, "remembered")
