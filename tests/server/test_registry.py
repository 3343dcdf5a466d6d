"""The home's receiver record: one stable URL per home, on a real file and real sockets."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

from hooklab.server import registry


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_a_claimed_home_is_served_while_its_port_listens(tmp_path: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
        claimed = registry.claim(tmp_path, "127.0.0.1", port)
        assert registry.running(tmp_path) == claimed
        assert claimed.url == f"http://127.0.0.1:{port}"
    assert registry.running(tmp_path) is None  # the port closed: nobody serves it any more


def test_a_home_claimed_by_a_process_that_is_gone_is_not_served(tmp_path: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        registry.claim(tmp_path, "127.0.0.1", listener.getsockname()[1], pid=_dead_pid())
        assert registry.running(tmp_path) is None


def test_release_keeps_the_port_for_the_next_start(tmp_path: Path) -> None:
    registry.claim(tmp_path, "127.0.0.1", 8765)
    registry.release(tmp_path, 8765)
    assert registry.running(tmp_path) is None
    assert registry.remembered_port(tmp_path, "127.0.0.1") == 8765
    assert registry.remembered_port(tmp_path, "0.0.0.0") is None  # another host: not that port


def test_release_by_a_process_that_no_longer_owns_the_home_changes_nothing(
    tmp_path: Path,
) -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
        registry.claim(tmp_path, "127.0.0.1", port, pid=os.getppid())
        registry.release(tmp_path, port)  # this process never claimed it
        assert registry.running(tmp_path) is not None
        registry.claim(tmp_path, "127.0.0.1", port)
        registry.release(tmp_path, port + 1)  # another receiver of this process: not this one
        assert registry.running(tmp_path) is not None


def test_a_missing_or_broken_record_reads_as_none(tmp_path: Path) -> None:
    assert registry.read(tmp_path) is None
    (tmp_path / registry.RECEIVER_FILE).write_text("{not json")
    assert registry.read(tmp_path) is None
    assert registry.remembered_port(tmp_path, "127.0.0.1") is None
