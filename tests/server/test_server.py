"""`hooklab serve` as a real process: its URL line, clean stops, and no loss under `kill -9`."""

from __future__ import annotations

import asyncio
import json
import os
import resource
import signal
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import pytest
from cli_support import base_env, run_cli, served_url, untimed

from hooklab.core.examples import DYNAMIC_TEMPLATE as SEED_TEMPLATE
from hooklab.server import registry
from hooklab.workspace import Workspace

ADMIN = "server-test-key"


@contextmanager
def hooklab_serve(
    home: Path, *args: str, env: dict[str, str] | None = None
) -> Iterator[tuple[subprocess.Popen[str], str]]:
    environment = {**os.environ, "HOOKLAB_ADMIN_KEY": ADMIN, **(env or {})}
    command = [sys.executable, "-m", "hooklab.server", "--port", "0", *args]
    if home is not None:
        command += ["--home", str(home)]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environment
    )
    try:
        line = process.stdout.readline() if process.stdout else ""
        assert "hooklab serving at http://127.0.0.1:" in line, process.stderr.read()  # type: ignore[union-attr]
        yield process, served_url(line)
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)
        for stream in (process.stdout, process.stderr):
            if stream:
                stream.close()


def api_create(base: str, template: str = SEED_TEMPLATE) -> dict[str, str]:
    request = urllib.request.Request(
        f"{base}/api/webhooks/",
        data=json.dumps({"name": "models", "template": template}).encode(),
        headers={"Authorization": f"Bearer {ADMIN}", "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)  # type: ignore[no-any-return]


def post_form(url: str, body: bytes) -> int:
    request = urllib.request.Request(
        url, data=body, headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return int(response.status)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_serve_prints_its_url_answers_and_stops_cleanly(tmp_path: Path, signum: int) -> None:
    with hooklab_serve(tmp_path) as (process, base):
        hook = api_create(base)
        assert post_form(f"{base}/hooks/{hook['slug']}", b"model=m1&friendly_name=f") == 204
        process.send_signal(signum)
        assert process.wait(timeout=10) == 0
        assert process.stdout is not None and "hooklab stopped" in process.stdout.read()
    ws = Workspace(tmp_path / "hooklab.db")
    assert [stored.request.body for stored in ws.captured()] == [b"model=m1&friendly_name=f"]
    ws.close()


def test_hooklab_home_is_the_default_home(tmp_path: Path) -> None:
    with hooklab_serve(None, env={"HOOKLAB_HOME": str(tmp_path)}) as (process, base):  # type: ignore[arg-type]
        api_create(base)
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=10)
    assert (tmp_path / "hooklab.db").exists()


def test_a_port_in_use_exits_with_a_clear_message(tmp_path: Path) -> None:
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = str(taken.getsockname()[1])
    try:
        result = subprocess.run(
            [sys.executable, "-m", "hooklab.server", "--home", str(tmp_path), "--port", port],
            capture_output=True,
            text=True,
            timeout=30,
        )
    finally:
        taken.close()
    assert result.returncode == 1
    assert (
        result.stderr.strip()
        == f"hooklab: Cannot listen on 127.0.0.1:{port}: address already in use"
    )


def test_a_home_already_served_is_refused_and_its_port_kept_for_the_next_start(
    tmp_path: Path,
) -> None:
    with hooklab_serve(tmp_path) as (process, base):
        second = subprocess.run(
            [sys.executable, "-m", "hooklab.server", "--home", str(tmp_path), "--port", "0"],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert second.returncode == 1
        assert second.stderr.strip() == (
            f"hooklab: {tmp_path} is already served by another hooklab (process {process.pid} "
            f"on {os.uname().nodename}): stop that one first, or give another --home; to run "
            "several, share a PostgreSQL store (--store postgresql://...)"
        )
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    record = registry.read(tmp_path)
    assert record is not None and not record.running and record.url == base
    assert registry.running(tmp_path) is None  # gone: the next receiver may take the home


async def _load(host: str, port: int, path: str, acked: list[str], stop: asyncio.Event) -> None:
    """One keep-alive connection sending numbered form POSTs until the server goes away."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while not stop.is_set():
            request_id = f"r{len(acked)}-{id(writer)}-{os.urandom(4).hex()}"
            body = f"model={request_id}&friendly_name=load".encode()
            writer.write(
                f"POST {path} HTTP/1.1\r\nHost: {host}\r\n"
                "Content-Type: application/x-www-form-urlencoded\r\n"
                f"Content-Length: {len(body)}\r\n\r\n".encode()
                + body
            )
            await writer.drain()
            status_line = await reader.readline()
            while (await reader.readline()) not in (b"\r\n", b""):
                pass
            if not status_line:
                return
            if int(status_line.split()[1]) == 204:
                acked.append(request_id)
    except (ConnectionError, IndexError, ValueError):
        return
    finally:
        writer.close()
        with suppress(ConnectionError):
            await writer.wait_closed()


@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGTERM], ids=["kill-9", "sigterm"])
def test_a_stop_in_the_middle_of_load_loses_no_acknowledged_request(
    tmp_path: Path, signum: int
) -> None:
    with hooklab_serve(tmp_path) as (process, base):
        hook = api_create(base)
        host, port = base.removeprefix("http://").split(":")

        async def scenario() -> list[str]:
            acked: list[str] = []
            stop = asyncio.Event()
            senders = [
                asyncio.ensure_future(_load(host, int(port), f"/hooks/{hook['slug']}", acked, stop))
                for _ in range(16)
            ]
            while len(acked) < 400:
                await asyncio.sleep(0.005)
            process.send_signal(signum)  # mid-load: requests are in flight right now
            await asyncio.wait_for(asyncio.gather(*senders), timeout=30)
            return acked

        acked = asyncio.run(scenario())
        assert process.wait(timeout=10) == (-signal.SIGKILL if signum == signal.SIGKILL else 0)
    ws = Workspace(tmp_path / "hooklab.db")
    stored = {stored.request.body.decode() for stored in ws.captured()}
    ws.close()
    missing = [rid for rid in acked if f"model={rid}&friendly_name=load" not in stored]
    assert len(acked) >= 400
    assert missing == []


def no_room_for_files() -> None:
    """In the child: a disk that is full (every write to a file fails, EFBIG)."""
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))


def test_a_disk_that_fills_while_the_admin_key_is_made_leaves_no_empty_key(
    tmp_path: Path,
) -> None:
    env = base_env(HOOKLAB_HOME=str(tmp_path))
    command = [sys.executable, "-m", "hooklab", "admin-key"]
    full = subprocess.run(
        command, env=env, capture_output=True, text=True, preexec_fn=no_room_for_files
    )
    assert (full.returncode, full.stdout) == (1, "")
    [line] = full.stderr.splitlines()
    assert (
        line == f"hooklab: cannot write the admin key to {tmp_path / 'admin_key'}: File too large"
    )
    assert list(tmp_path.iterdir()) == []  # neither an empty key nor a temporary file
    # Space returns. An empty key file (as an older hooklab left it) counts as absent too.
    (tmp_path / "admin_key").write_text("")
    key = run_cli(env, "admin-key").stdout.strip()
    assert key.startswith("hlak_") and run_cli(env, "admin-key").stdout.strip() == key
    (tmp_path / "admin_key").write_text("")
    with hooklab_serve(tmp_path, env={"HOOKLAB_ADMIN_KEY": ""}) as (_, base):
        key = run_cli(env, "admin-key").stdout.strip()
        listed = run_cli(env, "webhook", "ls", "--api-url", base, "--api-key", key)
        assert listed.returncode == 0, listed.stderr


def test_serving_beyond_loopback_says_that_hooks_are_open_to_the_network(tmp_path: Path) -> None:
    for host, warned in [("0.0.0.0", True), ("127.0.0.1", False)]:
        command = [sys.executable, "-m", "hooklab.server", "--home", str(tmp_path), "--port", "0"]
        process = subprocess.Popen(
            [*command, "--host", host],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "HOOKLAB_ADMIN_KEY": ADMIN},
        )
        assert process.stdout is not None
        assert f"hooklab serving at http://{host}:" in process.stdout.readline()
        process.send_signal(signal.SIGTERM)
        _, said = process.communicate(timeout=30)
        open_lines = [line for line in untimed(said) if "open to the network" in line]
        expected = (
            f"hooklab: listening on {host}, so /hooks is open to the network: anyone who can "
            "reach this machine can send to a webhook whose URL they know"
        )
        assert open_lines == ([expected] if warned else [])


def few_files() -> None:
    """In the child: `ulimit -n 128`."""
    resource.setrlimit(resource.RLIMIT_NOFILE, (128, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))


def test_out_of_files_it_closes_the_longest_waiting_and_answers_others(tmp_path: Path) -> None:
    ws = Workspace(tmp_path / "hooklab.db")
    hook = ws.create_webhook("models", SEED_TEMPLATE)
    ws.close()
    command = [sys.executable, "-m", "hooklab.server", "--home", str(tmp_path), "--port", "0"]
    server = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "HOOKLAB_ADMIN_KEY": ADMIN},
        preexec_fn=few_files,
    )
    slow: list[socket.socket] = []
    try:
        assert server.stdout is not None
        base = served_url(server.stdout.readline())
        port = int(base.rsplit(":", 1)[1])
        for _ in range(400):  # slow senders: a request begun, never finished
            sender = socket.create_connection(("127.0.0.1", port))
            sender.sendall(b"POST /hooks/x HTTP/1.1\r\nHost: x\r\n")
            slow.append(sender)
        # A sender that means well is still answered, more than once.
        url = f"{base}/hooks/{hook.slug}"
        assert [post_form(url, b"model=m&friendly_name=M") for _ in range(3)] == [204] * 3
    finally:
        for sender in slow:
            sender.close()
        server.send_signal(signal.SIGTERM)
        _, said = server.communicate(timeout=30)
    assert server.returncode == 0
    [told] = [line for line in untimed(said) if line.strip()]
    assert told.startswith("hooklab: ") and "connections are open, the most this process" in told
