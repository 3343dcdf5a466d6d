"""When the store cannot write (here: another program holds the file locked), the request is
answered 503 with Retry-After, never 204, the cause reaches the person once, and the receiver
goes on storing as soon as the file is free again (SPEC 12)."""

from __future__ import annotations

import resource
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from cli_support import served_url, untimed
from receiver_helpers import locked, run, send, serving

from hooklab.core.examples import DYNAMIC_TEMPLATE as SEED
from hooklab.workspace import Workspace

FORM = {"model": "m", "friendly_name": "M"}


def test_a_locked_file_is_a_503_with_retry_after_reported_once(tmp_path: Path) -> None:
    ws = Workspace(tmp_path / "hooklab.db")
    hook = ws.create_webhook("models", SEED)
    causes: list[str] = []

    async def scenario() -> list[tuple[int, str | None]]:
        async with serving(ws) as receiver:
            receiver.on_store_error = causes.append
            url = receiver.webhook_url(hook)
            holder = locked(tmp_path / "hooklab.db")
            refused = [await send(url, "POST", form=FORM) for _ in range(2)]
            holder.execute("ROLLBACK")
            holder.close()
            stored = await send(url, "POST", form=FORM)
            assert receiver.store_errors == {causes[0]: 2}
            return [(r.status, r.headers.get("Retry-After")) for r in [*refused, stored]]

    assert run(scenario()) == [(503, "5"), (503, "5"), (204, None)]
    assert causes == ["OperationalError: database is locked"]  # once, though it failed twice
    assert ws.requests()["status"].tolist() == [204]  # nothing acknowledged was lost
    ws.close()


def test_hooklab_serve_prints_why_a_request_was_not_stored(tmp_path: Path) -> None:
    ws = Workspace(tmp_path / "hooklab.db")
    hook = ws.create_webhook("models", SEED)
    ws.close()
    server = subprocess.Popen(
        [sys.executable, "-m", "hooklab.server", "--home", str(tmp_path), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert server.stdout is not None and server.stderr is not None
    base = served_url(server.stdout.readline())
    holder = locked(tmp_path / "hooklab.db")
    request = urllib.request.Request(f"{base}/hooks/{hook.slug}", data=b"model=m")
    started = time.monotonic()
    try:
        urllib.request.urlopen(request, timeout=30)
        raise AssertionError("a request the store refused was acknowledged")
    except urllib.error.HTTPError as refused:
        assert (refused.code, refused.headers["Retry-After"]) == (503, "5")
    assert time.monotonic() - started < 30
    holder.execute("ROLLBACK")
    holder.close()
    server.send_signal(signal.SIGTERM)
    _, errors = server.communicate(timeout=30)
    assert server.returncode == 0
    assert "a request could not be stored and was answered 503" in errors
    assert (
        "over this run, 1 request(s) answered 503, not stored: OperationalError: database is locked"
        in errors
    )


def answered(url: str) -> int:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=b"model=m"), timeout=30):
            return 204
    except urllib.error.HTTPError as refused:
        return refused.code


@pytest.mark.skipif(not hasattr(resource, "prlimit"), reason="sets a running process's limit")
def test_a_full_disk_is_one_line_when_it_starts_and_one_when_it_ends(tmp_path: Path) -> None:
    """No file may grow in the server (as on a full disk), twice; each run of refused requests
    is told once when it starts and once, with its count, when storing works again."""
    ws = Workspace(tmp_path / "hooklab.db")
    hook = ws.create_webhook("models", SEED)
    ws.close()
    server = subprocess.Popen(
        [sys.executable, "-m", "hooklab.server", "--home", str(tmp_path), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert server.stdout is not None
    url = f"{served_url(server.stdout.readline())}/hooks/{hook.slug}"
    statuses = [answered(url)]
    for refused in (3, 2):
        resource.prlimit(server.pid, resource.RLIMIT_FSIZE, (0, resource.RLIM_INFINITY))
        statuses += [answered(url) for _ in range(refused)]
        resource.prlimit(server.pid, resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY,) * 2)
        statuses.append(answered(url))
    server.send_signal(signal.SIGTERM)
    _, errors = server.communicate(timeout=30)
    assert statuses == [204, 503, 503, 503, 204, 503, 503, 204]
    lines = untimed(errors)
    assert len(lines) == 5, errors
    assert [line.split(" (")[0] for line in lines[0:4:2]] == [
        "hooklab: a request could not be stored and was answered 503"
    ] * 2
    assert lines[1] == "hooklab: storing requests again, after 3 requests answered 503"
    assert lines[3] == "hooklab: storing requests again, after 2 requests answered 503"
    assert lines[4].startswith("hooklab: over this run, 5 request(s) answered 503, not stored: ")
