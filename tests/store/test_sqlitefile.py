"""A home that cannot be written: every read works, and a write says in one line which file
cannot be written and why (through the real CLI, `hooklab serve` and the Python API, run as a
user whom the file modes bind)."""

from __future__ import annotations

import functools
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_support import base_env

from hooklab.core.request import HookRequest
from hooklab.workspace import Workspace

TEMPLATE = '{"event": "model-update", "resource": {"prefect.resource.id": "m.{{ body.model }}"}}'
CREATE = ("webhook", "create", "other", "--template", TEMPLATE)


@functools.cache
def _capabilities_can_be_dropped() -> bool:
    if shutil.which("setpriv") is None:
        return False
    probe = subprocess.run([*_DROP, "true"], capture_output=True)
    return probe.returncode == 0


# Root passes by file modes through these capabilities; without them, the modes bind root too.
_DROP = ("setpriv", "--bounding-set", "-dac_override,-dac_read_search,-fowner", "--")


def bound_by_modes() -> tuple[str, ...]:
    """A command prefix under which file modes hold: none for an ordinary user; for root,
    setpriv taking away the capabilities that let root write a read-only file."""
    if os.geteuid() != 0:
        return ()
    if not _capabilities_can_be_dropped():
        pytest.skip(
            "running as root, which writes read-only files, and setpriv cannot take that "
            "right away here"
        )
    return _DROP


def hooklab(
    home: Path, *args: str, prefix: tuple[str, ...] = ()
) -> subprocess.CompletedProcess[str]:
    """The `hooklab` command on `home`, as a user the file modes bind (or after `prefix`)."""
    return subprocess.run(
        [
            *(prefix or bound_by_modes()),
            sys.executable,
            "-m",
            "hooklab",
            *args,
            "--home",
            str(home),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env=base_env(),
    )


def serve(home: Path, *, prefix: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "hooklab.server", "--home", str(home), "--port", "0"]
    return subprocess.run(
        [*(prefix or bound_by_modes()), *command],
        capture_output=True,
        text=True,
        timeout=30,
        env=base_env(),
    )


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Path]:
    """A home with a webhook, one event it produced, and an admin key."""
    folder = tmp_path / "home"
    ws = Workspace(folder / "hooklab.db")
    hook = ws.create_webhook("models", TEMPLATE)
    ws.receive(hook.slug, HookRequest.fake("POST", json={"model": "m1"}))
    ws.close()
    (folder / "admin_key").write_text("hlak_kept\n")
    (folder / "admin_key").chmod(0o600)
    yield folder
    folder.chmod(0o700)  # so that the temporary folder can be removed


def test_a_read_only_home_is_read_and_each_write_says_which_file_and_why(home: Path) -> None:
    assert sorted(p.name for p in home.iterdir()) == ["admin_key", "hooklab.db"]
    home.chmod(0o500)
    database = home / "hooklab.db"
    why = f"cannot write {database}: its folder {home} is read-only"

    events = hooklab(home, "events")
    assert (events.returncode, events.stderr) == (0, "")
    assert "m.m1" in events.stdout
    listed = hooklab(home, "webhook", "ls")
    assert (listed.returncode, listed.stderr) == (0, "")
    assert "models" in listed.stdout

    created = hooklab(home, *CREATE)
    assert (created.returncode, created.stderr) == (1, why + "\n")
    served = serve(home)
    assert (served.returncode, served.stdout) == (1, "")
    assert served.stderr == f"hooklab: {why}; serving needs a home it can write\n"
    (home / "admin_key").chmod(0o600)
    assert sorted(p.name for p in home.iterdir()) == ["admin_key", "hooklab.db"]  # nothing made

    missing = hooklab(home / "nothing-here", "webhook", "create", "w", "-t", "{}")  # makes one
    assert missing.returncode == 1
    assert (
        missing.stderr == f"cannot create {home / 'nothing-here'}: its folder {home} is read-only\n"
    )
    unread = hooklab(home / "nothing-here", "events")  # only reads: makes nothing
    assert unread.returncode == 2
    assert f"no hooklab home at {home / 'nothing-here'}, so nothing to read" in unread.stderr


WORKSPACE_READS = """
import sys
from hooklab.core.errors import NotWritable
from hooklab.workspace import Workspace
ws = Workspace(sys.argv[1])
print(list(ws.events()["resource.id"]), len(ws.requests()), [h.name for h in ws.list_webhooks()])
try:
    ws.create_webhook("other", "{}")
except NotWritable as exc:
    print(exc)
"""


def test_the_python_api_reads_a_read_only_home_and_refuses_writes_in_one_line(home: Path) -> None:
    home.chmod(0o500)
    database = home / "hooklab.db"
    run = subprocess.run(
        [*bound_by_modes(), sys.executable, "-c", WORKSPACE_READS, str(database)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.stderr == ""
    assert run.stdout.splitlines() == [
        "['m.m1'] 1 ['models']",
        f"cannot write {database}: its folder {home} is read-only",
    ]


def test_a_read_only_database_file_is_read_and_names_itself(home: Path) -> None:
    database = home / "hooklab.db"
    database.chmod(0o400)
    events = hooklab(home, "events")
    assert (events.returncode, events.stderr) == (0, "")
    assert "m.m1" in events.stdout
    created = hooklab(home, *CREATE)
    assert (created.returncode, created.stderr) == (
        1,
        f"cannot write {database}: the file is read-only\n",
    )
    served = serve(home)
    assert served.returncode == 1
    assert served.stderr.splitlines() == [
        f"hooklab: cannot write {database}: the file is read-only; serving needs a home it can "
        "write"
    ]


KILLED_WHILE_WRITING = """
import os, sys
from hooklab.core.request import HookRequest
from hooklab.workspace import Workspace
ws = Workspace(sys.argv[1])
ws.receive(ws.get_webhook("models").slug, HookRequest.fake("POST", json={"model": "m2"}))
os.kill(os.getpid(), 9)
"""


def test_a_read_only_home_left_by_a_killed_process_shows_what_it_had_stored(home: Path) -> None:
    """Its last commits are in the -wal SQLite left behind; the read sees them."""
    killed = subprocess.run([sys.executable, "-c", KILLED_WHILE_WRITING, str(home / "hooklab.db")])
    assert killed.returncode == -signal.SIGKILL
    assert (home / "hooklab.db-wal").stat().st_size > 0
    for path in home.iterdir():
        path.chmod(0o400)
    home.chmod(0o500)
    events = hooklab(home, "events")
    assert (events.returncode, events.stderr) == (0, "")
    assert "m.m1" in events.stdout and "m.m2" in events.stdout


@functools.cache
def _can_mount_read_only() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "mount", "--bind", "-o", "ro", "/", "/"],
        capture_output=True,
    )
    return probe.returncode == 0


@pytest.mark.skipif(
    not _can_mount_read_only(),
    reason="a read-only mount needs `unshare --mount` and the right to mount (root here)",
)
def test_a_home_on_a_read_only_file_system_is_read_and_says_so(home: Path) -> None:
    script = 'mount --bind -o ro "$1" "$1" && shift && exec "$@"'
    read_only = (
        "unshare",
        "--mount",
        "--propagation",
        "private",
        "sh",
        "-c",
        script,
        "-",
        str(home),
    )
    events = hooklab(home, "events", prefix=read_only)
    assert (events.returncode, events.stderr) == (0, "")
    assert "m.m1" in events.stdout
    created = hooklab(home, *CREATE, prefix=read_only)
    why = "the file system is read-only"
    assert (created.returncode, created.stderr) == (
        1,
        f"cannot write {home / 'hooklab.db'}: {why}\n",
    )
    assert serve(home, prefix=read_only).stderr.splitlines() == [
        f"hooklab: cannot write {home / 'hooklab.db'}: {why}; serving needs a home it can write"
    ]
