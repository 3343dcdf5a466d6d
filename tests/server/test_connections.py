"""Idle and slow connections are closed by the receiver's sweep, over real loopback sockets;
busy ones are kept. Tornado's own per-request timer is off, so this is the only guard."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from receiver_helpers import run, serving

from hooklab.core.examples import DYNAMIC_TEMPLATE as SEED_TEMPLATE
from hooklab.server.connections import IdleConnections
from hooklab.workspace import Workspace

TIMEOUT = 0.4  # seconds; the sweep runs every tenth of a second


@pytest.fixture
def ws(tmp_path: Path) -> Iterator[Workspace]:
    workspace = Workspace(tmp_path / "hooklab.db")
    yield workspace
    workspace.close()


def request_bytes(path: str, number: int) -> bytes:
    body = f"model=m{number}&friendly_name=Model+{number}".encode()
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def answer(reader: asyncio.StreamReader) -> bytes:
    """The status line of one answer; its headers are read and dropped (a 204 has no body)."""
    status = await reader.readline()
    while (await reader.readline()) not in (b"\r\n", b""):
        pass
    return status.strip()


async def closed_within(reader: asyncio.StreamReader, seconds: float) -> bool:
    try:
        return await asyncio.wait_for(reader.read(1), seconds) == b""
    except asyncio.TimeoutError:
        return False


def test_a_keep_alive_connection_left_idle_is_closed_after_the_timeout(ws: Workspace) -> None:
    hook = ws.create_webhook("models", SEED_TEMPLATE)

    async def scenario() -> tuple[bytes, bool, bool]:
        async with serving(ws, idle_timeout=TIMEOUT) as receiver:
            url = urlsplit(receiver.webhook_url(hook))
            reader, writer = await asyncio.open_connection(url.hostname, url.port)
            writer.write(request_bytes(url.path, 1))
            status = await answer(reader)
            early = await closed_within(reader, TIMEOUT / 2)
            later = await closed_within(reader, TIMEOUT * 2)
            writer.close()
            return status, early, later

    assert run(scenario()) == (b"HTTP/1.1 204 No Content", False, True)
    assert len(ws.captured()) == 1


def test_a_sender_trickling_its_request_is_closed_and_nothing_is_stored(ws: Workspace) -> None:
    hook = ws.create_webhook("models", SEED_TEMPLATE)

    async def scenario() -> bool:
        async with serving(ws, idle_timeout=TIMEOUT) as receiver:
            url = urlsplit(receiver.webhook_url(hook))
            reader, writer = await asyncio.open_connection(url.hostname, url.port)
            whole = request_bytes(url.path, 1)
            closed = False
            for index in range(len(whole) - 1):  # one byte every 50 ms: never the last one
                writer.write(whole[index : index + 1])
                if await closed_within(reader, 0.05):
                    closed = True
                    break
            writer.close()
            return closed

    assert run(scenario()) is True
    assert ws.captured() == []


def test_a_connection_in_steady_use_outlives_many_timeouts(ws: Workspace) -> None:
    hook = ws.create_webhook("models", SEED_TEMPLATE)

    async def scenario() -> list[bytes]:
        async with serving(ws, idle_timeout=TIMEOUT) as receiver:
            url = urlsplit(receiver.webhook_url(hook))
            reader, writer = await asyncio.open_connection(url.hostname, url.port)
            statuses = []
            for number in range(12):  # 12 x 0.1 s: three timeouts on one connection
                writer.write(request_bytes(url.path, number))
                statuses.append(await answer(reader))
                await asyncio.sleep(TIMEOUT / 4)
            writer.close()
            return statuses

    assert run(scenario()) == [b"HTTP/1.1 204 No Content"] * 12
    assert len(ws.captured()) == 12


@pytest.mark.parametrize("timeout", [0, -1, float("nan")])
def test_the_timeout_must_be_positive(timeout: float) -> None:
    with pytest.raises(ValueError, match="idle_timeout must be a positive number of seconds"):
        IdleConnections(timeout)


def test_hooklab_serve_refuses_a_timeout_that_is_not_positive(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "hooklab.server", "--home", str(tmp_path), "--idle-timeout", "0"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stderr.strip() == "hooklab: --idle-timeout must be a positive number of seconds"
