"""The home on disk: private to its owner (real files, their modes), and served by one process
at a time (real processes holding a real lock, killed with SIGKILL, in another PID namespace)."""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import stat
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from cli_support import base_env, run_cli, served_url

from hooklab.store.home import HomeInUse, hold_home
from hooklab.workspace import Workspace

TEMPLATE = '{"event": "ping", "resource": {"prefect.resource.id": "pinger"}}'


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def modes(home: Path) -> dict[str, int]:
    """Every entry of the home, with its permission bits."""
    return {path.name: mode(path) for path in sorted(home.iterdir())}


@contextmanager
def serving(
    home: Path, *prefix: str, umask: int | None = None, key: str = "home-test-key"
) -> Iterator[subprocess.Popen[str]]:
    """`hooklab serve` on `home` (after `prefix`, a command to run it in), until it is done;
    without a `key`, it makes one in the home."""
    process = subprocess.Popen(
        [*prefix, sys.executable, "-m", "hooklab.server", "--home", str(home), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=base_env(HOOKLAB_ADMIN_KEY=key),
        preexec_fn=None if umask is None else lambda: os.umask(umask),
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=10)


def serve_once(home: Path, *prefix: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "hooklab.server", "--home", str(home), "--port", "0"]
    return subprocess.run(
        [*prefix, *command],
        capture_output=True,
        text=True,
        timeout=30,
        env=base_env(HOOKLAB_ADMIN_KEY="home-test-key"),
    )


def started(process: subprocess.Popen[str]) -> str:
    assert process.stdout is not None and process.stderr is not None
    line = process.stdout.readline()
    assert "hooklab serving at " in line, process.stderr.read()
    return served_url(line)


# Private files


def test_a_new_home_and_every_file_hooklab_writes_in_it_are_private_whatever_the_umask(
    tmp_path: Path,
) -> None:
    home = tmp_path / "home"
    with serving(home, umask=0, key="") as process:  # a umask that takes nothing away
        started(process)
        run_cli(base_env(HOOKLAB_HOME=str(home)), "webhook", "create", "m", "--template", TEMPLATE)
        found = modes(home)
        # SQLite's own files are there while the server has the database open.
        assert {"hooklab.db-wal", "hooklab.db-shm", "admin_key"} <= set(found)
        assert mode(home) == 0o700
        assert found == dict.fromkeys(found, 0o600)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
        assert process.stderr is not None and "private" not in process.stderr.read()
    assert set(modes(home).values()) == {0o600}  # receiver.json, rewritten on the way out


def test_a_home_an_older_hooklab_left_readable_is_made_private_and_said_once(
    tmp_path: Path,
) -> None:
    home = tmp_path / "home"
    home.mkdir(mode=0o755)
    home.chmod(0o755)
    old = sqlite3.connect(home / "hooklab.db")  # as an older hooklab made it: 0644, WAL open
    old.execute("PRAGMA journal_mode=WAL")
    old.execute("CREATE TABLE kept (x)")
    (home / "admin_key").write_text("hlak_old\n")
    (home / "receiver.json").write_text("{}")
    (home / "notes.txt").write_text("mine")  # not hooklab's: left as it is
    for path in home.iterdir():
        path.chmod(0o644)
    assert mode(home / "hooklab.db-wal") == 0o644
    env = base_env(HOOKLAB_HOME=str(home))

    first = run_cli(env, "webhook", "ls")
    second = run_cli(env, "webhook", "ls")
    found = modes(home)  # while the older connection keeps SQLite's -wal and -shm there
    old.close()

    assert first.returncode == 0
    assert first.stderr.splitlines() == [
        f"hooklab: made {home} private to you: other users could read it (now 0700, files 0600)"
    ]
    assert (second.returncode, second.stderr) == (0, "")
    assert mode(home) == 0o700
    assert found == {
        "admin_key": 0o600,
        "hooklab.db": 0o600,
        "hooklab.db-shm": 0o600,
        "hooklab.db-wal": 0o600,
        "notes.txt": 0o644,
        "receiver.json": 0o600,
    }


def test_a_database_outside_a_home_is_private_and_its_folder_left_as_it_was(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project = tmp_path / "project"
    project.mkdir()
    project.chmod(0o755)
    readable = project / "old.db"
    sqlite3.connect(readable).close()
    readable.chmod(0o644)

    Workspace(project / "notes.db").close()
    Workspace(project / "new" / "notes.db").close()
    Workspace(readable).close()

    assert mode(project) == 0o755  # a folder of the user's, holding other things
    assert mode(project / "notes.db") == 0o600
    assert mode(project / "new") == 0o700  # made by hooklab
    assert mode(readable) == 0o600
    said = capsys.readouterr().err.splitlines()
    assert said == [
        f"hooklab: made {readable} private to you: other users could read it (now 0600)"
    ]


def test_a_database_named_by_a_link_to_nothing_is_made_private_where_it_lands(
    tmp_path: Path,
) -> None:
    source = tmp_path / "source.db"
    Workspace(source).close()
    elsewhere = tmp_path / "elsewhere"  # a folder others may read, as most are
    elsewhere.mkdir()
    elsewhere.chmod(0o755)
    target = tmp_path / "copy"
    target.mkdir()
    (target / "hooklab.db").symlink_to(elsewhere / "hooklab.db")  # not there yet
    (tmp_path / "backup.db").symlink_to(elsewhere / "backup.db")

    for destination in (target, tmp_path / "backup.db"):
        done = subprocess.run(
            [sys.executable, "-m", "hooklab", "store", "copy", str(source), str(destination)],
            capture_output=True,
            text=True,
            timeout=60,
            env=base_env(),
            preexec_fn=lambda: os.umask(0o022),
        )
        assert done.returncode == 0, done.stderr

    # The webhooks' secrets landed behind the links: never readable by other users.
    assert modes(elsewhere) == {"backup.db": 0o600, "hooklab.db": 0o600}
    assert mode(elsewhere) == 0o755  # the folder is the user's, left as it was


# One server per home


HOLDER = """
import sys, time
from hooklab.store.home import hold_home
hold_home(sys.argv[1])
print("held", flush=True)
time.sleep(120)
"""


@contextmanager
def held_elsewhere(home: Path, *prefix: str) -> Iterator[subprocess.Popen[str]]:
    """Another process (after `prefix`) holding the home."""
    process = subprocess.Popen(
        [*prefix, sys.executable, "-c", HOLDER, str(home)],
        stdout=subprocess.PIPE,
        text=True,
        env=base_env(),
    )
    try:
        assert process.stdout is not None and process.stdout.readline() == "held\n"
        yield process
    finally:
        process.kill()
        process.communicate(timeout=10)


def refusal(home: Path) -> str:
    return (
        f"{home} is already served by another hooklab (process {{pid}} on {os.uname().nodename}):"
        " stop that one first, or give another --home; to run several, share a PostgreSQL store "
        "(--store postgresql://...)"
    )


def test_a_second_serve_on_a_home_is_refused_in_one_line(tmp_path: Path) -> None:
    with serving(tmp_path) as first:
        base = started(first)
        second = serve_once(tmp_path)
        assert second.returncode == 1
        assert second.stderr.splitlines() == ["hooklab: " + refusal(tmp_path).format(pid=first.pid)]
        assert second.stdout == ""
        run_cli(base_env(), "webhook", "ls", "--api-url", base, "--api-key", "home-test-key")
        assert first.poll() is None  # the first one serves on


def test_a_holder_killed_with_sigkill_frees_the_home(tmp_path: Path) -> None:
    with held_elsewhere(tmp_path) as holder:
        with pytest.raises(HomeInUse) as refused:
            hold_home(tmp_path)
        assert str(refused.value) == refusal(tmp_path).format(pid=holder.pid)
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=10)
    with hold_home(tmp_path):  # taken at once: the kernel let go of the dead one's lock
        again = serve_once(tmp_path)
    assert "already served" in again.stderr
    with serving(tmp_path) as process:  # and now nobody has it
        started(process)


def _can_start_in_a_new_pid_namespace() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(["unshare", "--pid", "--fork", "true"], capture_output=True)
    return probe.returncode == 0


@pytest.mark.skipif(
    not _can_start_in_a_new_pid_namespace(),
    reason="starting a process in a new PID namespace needs `unshare` and the right to use it "
    "(root, or user namespaces allowed)",
)
def test_a_serve_in_another_pid_namespace_is_refused_as_well(tmp_path: Path) -> None:
    """Two containers on one volume: process ids mean nothing across them, the lock holds."""
    in_a_container = ("unshare", "--pid", "--fork", "--kill-child")
    with serving(tmp_path) as first:
        started(first)
        second = serve_once(tmp_path, *in_a_container)
        assert second.returncode == 1, second.stdout
        [line] = second.stderr.splitlines()
        assert line.startswith(f"hooklab: {tmp_path} is already served by another hooklab")
    with held_elsewhere(tmp_path, *in_a_container):  # and the other way round
        assert "already served" in serve_once(tmp_path).stderr
