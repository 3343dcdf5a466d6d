"""When the store cannot write (here: another program holds the file locked), the request is
answered 503 with Retry-After, never 204, the cause reaches the person once, and the receiver
goes on storing as soon as the file is free again (SPEC 12)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

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
    base = server.stdout.readline().split()[-1]
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
    assert "1 request(s) answered 503, not stored: OperationalError: database is locked" in errors
