"""What `hooklab serve` says and does as it starts, as a real process: the port it takes and
why, the webhooks' URLs, and log lines with their time, as text or JSON."""

from __future__ import annotations

import json
import os
import re
import select
import signal
import socket
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import pytest
from cli_support import base_env, served_url, untimed

from hooklab.core.request import HookRequest
from hooklab.server import registry
from hooklab.server.banner import public_base
from hooklab.server.serve import DEFAULT_PORT, choose_port
from hooklab.workspace import Workspace

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


def line_within(stream: IO[str], seconds: float) -> str:
    """The next line of a child's pipe, or "" if none comes in time (never a hung test)."""
    ready, _, _ = select.select([stream], [], [], seconds)
    return stream.readline() if ready else ""


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


# The banner and the log lines

STAMP = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z "
TEMPLATE = '{"event": "e.{{ body.n }}", "resource": {"prefect.resource.id": "r"}}'


def stopped(process: subprocess.Popen[str]) -> tuple[str, str]:
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    return out, err


def test_every_line_has_its_time_and_the_webhooks_urls_follow_the_public_url(
    tmp_path: Path,
) -> None:
    ws = Workspace(tmp_path / "hooklab.db")
    hook = ws.create_webhook("orders", TEMPLATE)
    ws.forward_to("http://127.0.0.1:9/api")  # nothing listens: its child says so, on stderr
    ws.receive(hook.slug, HookRequest.fake(method="POST", json={"n": 1}))
    ws.close()
    args = ("--port", "0", "--public-url", "https://hooks.example.com/team/")
    with serving(tmp_path, *args) as (process, first):
        assert process.stdout is not None and process.stderr is not None
        banner = [process.stdout.readline() for _ in range(3)]  # API, webhook, forwarding
        failed = line_within(process.stderr, 30)  # the forwarding child's line, passed on
        out, err = stopped(process)
    lines = [first, *banner, *out.splitlines()]
    assert all(re.match(STAMP, line) for line in lines), lines
    url = f"https://hooks.example.com/team/hooks/{hook.slug}"
    assert untimed("".join(banner))[1] == f"webhook orders: {url}"
    assert re.match(STAMP + "hooklab: forwarding to http://127.0.0.1:9/api failed", failed)
    assert all(re.match(STAMP, line) for line in err.splitlines() if line), err
    assert untimed(out)[-1] == "hooklab stopped: 0 requests stored in 0 transactions"


def test_json_logs_are_one_object_a_line_and_never_hold_a_webhook_url(tmp_path: Path) -> None:
    ws = Workspace(tmp_path / "hooklab.db")
    hook = ws.create_webhook("orders", TEMPLATE)
    ws.close()
    with serving(tmp_path, "--port", "0", "--log-format", "json") as (process, first):
        assert process.stdout is not None
        banner = [process.stdout.readline() for _ in range(2)]  # API, webhook
        out, err = stopped(process)
    lines = [json.loads(line) for line in [first, *banner, *out.splitlines()]]
    assert all({"time", "level", "message"} <= line.keys() for line in lines)
    assert lines[0]["level"] == "info" and lines[0]["port_from"] == "given"
    assert re.fullmatch(STAMP.strip(), lines[0]["time"])
    [named] = [line for line in lines if line.get("webhook") == "orders"]
    assert named["webhook_id"] == hook.id
    assert hook.slug not in first + "".join(banner) + out + err
    # A refusal to start is a JSON line too, for the same shipper.
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = str(taken.getsockname()[1])
        refused = subprocess.run(
            [sys.executable, "-m", "hooklab.server", "--home", str(tmp_path), "--port", port,
             "--log-format", "json"],
            capture_output=True, text=True, timeout=30, env=base_env(HOOKLAB_ADMIN_KEY=ADMIN),
        )  # fmt: skip
    [line] = [json.loads(text) for text in refused.stderr.splitlines()]
    assert (refused.returncode, line["level"]) == (1, "error")
    assert line["message"] == f"Cannot listen on 127.0.0.1:{port}: address already in use"


def test_under_json_even_the_first_line_that_tightens_a_loose_home_is_json(
    tmp_path: Path,
) -> None:
    Workspace(tmp_path / "hooklab.db").close()
    tmp_path.chmod(0o755)  # as a copy or an unpacked backup may leave it
    (tmp_path / "hooklab.db").chmod(0o644)
    with serving(tmp_path, "--port", "0", "--log-format", "json") as (process, _first):
        _out, err = stopped(process)
    lines = [json.loads(line) for line in err.splitlines()]
    [tightened] = [line for line in lines if "private to you" in line["message"]]
    assert tightened["level"] == "warning"
    assert tightened["message"].startswith(f"made {tmp_path} private to you")
    assert tmp_path.stat().st_mode & 0o777 == 0o700


@pytest.mark.parametrize(
    ("given", "said"),
    [
        ("ftp://hooks.example.com", "'ftp://hooks.example.com' is not an http:// or https:// URL"),
        ("https://user:pw@hooks.example.com", "a public URL holds no user or password"),
        ("https://hooks.example.com/?x=1", "has a query or a fragment"),
        ("https://hooks.example.com:port", "'https://hooks.example.com:port' is not a URL"),
    ],
)
def test_a_public_url_that_cannot_be_one_is_refused_in_one_line(
    tmp_path: Path, given: str, said: str
) -> None:
    refused = subprocess.run(
        [sys.executable, "-m", "hooklab.server", "--home", str(tmp_path), "--public-url", given],
        capture_output=True, text=True, timeout=30, env=base_env(),
    )  # fmt: skip
    assert refused.returncode == 2
    [line] = refused.stderr.splitlines()
    assert line.startswith("hooklab: --public-url: ") and said in line
    assert public_base(" https://hooks.example.com/team/ ") == "https://hooks.example.com/team"


def test_the_admin_keys_hint_names_where_this_server_reads_it(tmp_path: Path) -> None:
    with serving(tmp_path, "--port", "0") as (process, _):
        assert process.stdout is not None
        api = untimed(process.stdout.readline())[0]
    assert api.endswith("(admin key: $HOOKLAB_ADMIN_KEY)"), api  # `serving` sets it
    env = base_env()
    process = subprocess.Popen(
        [sys.executable, "-m", "hooklab.server", "--home", str(tmp_path), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert process.stdout is not None
    process.stdout.readline()
    api = untimed(process.stdout.readline())[0]
    stopped(process)
    assert api.endswith("(admin key: `hooklab admin-key`)"), api


def test_a_store_a_newer_hooklab_upgraded_is_served_with_one_line_saying_so(
    tmp_path: Path,
) -> None:
    ws = Workspace(tmp_path / "hooklab.db")
    hook = ws.create_webhook("orders", TEMPLATE)
    ws.close()
    with sqlite3.connect(tmp_path / "hooklab.db") as db:  # a step this hooklab does not know
        db.execute("INSERT INTO migrations VALUES ('9001_from_a_newer_hooklab', 'x')")
    with serving(tmp_path, "--port", "0") as (process, first):
        assert process.stderr is not None
        said = untimed(line_within(process.stderr, 30))[0]
        sent = HookRequest.fake(method="POST", json={"n": 1})
        url = served_url(first)
        host, port = url.removeprefix("http://").rsplit(":", 1)
        with socket.create_connection((host, int(port)), timeout=5) as conn:
            conn.sendall(
                f"POST /hooks/{hook.slug} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
                f"\r\nContent-Length: {len(sent.body)}\r\nConnection: close\r\n\r\n".encode()
                + sent.body
            )
            answer = conn.recv(100)
    assert said == (
        "hooklab: the store has schema steps a newer hooklab made (9001_from_a_newer_hooklab); "
        "this one serves on, as the steps only add, but upgrade it soon"
    )
    assert answer.startswith(b"HTTP/1.1 204")
