"""Python's sqlite3 and ADBC's SQLite driver take turns on a file: the driver reads in this
process only when nothing here has the file open, and a writer elsewhere goes on writing."""

from __future__ import annotations

import gc
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pytest
from receiver_helpers import run, send, serving

import hooklab
from hooklab import HookRequest
from hooklab.core.examples import DYNAMIC_TEMPLATE
from hooklab.store import readout, snapshots, sqlitecopies
from hooklab.store.sqlite import SqliteStore
from hooklab.store.sqlitefile import connect


@pytest.fixture
def reads_here(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The files ADBC's SQLite driver read in this process, one entry a read."""
    opened: list[str] = []

    class Counted(snapshots.InProcess):
        def __init__(self, driver: object, location: str, *, sqlite: bool = False) -> None:
            opened.append(location)
            super().__init__(driver, location, sqlite=sqlite)

    monkeypatch.setattr(readout, "InProcess", Counted)
    yield opened


def workspace(path: Path, requests: int = 3) -> hooklab.Workspace:
    ws = hooklab.Workspace(path)
    hook = ws.create_webhook("models", DYNAMIC_TEMPLATE)
    for n in range(requests):
        ws.receive(hook.slug, HookRequest.fake(method="POST", form={"model": f"m{n}"}))
    return ws


def test_a_read_runs_in_this_process_when_nothing_else_here_has_the_file(
    tmp_path: Path, reads_here: list[str]
) -> None:
    ws = workspace(tmp_path / "hooklab.db")
    assert ws.events()["resource.id"].tolist() == ["product.models.m0", "product.models.m1",
                                                  "product.models.m2"]  # fmt: skip
    assert len(ws.requests()) == 3
    assert [Path(read).resolve() for read in reads_here] == [Path(ws.path).resolve()] * 2
    # The store had lent its connection for the read and has it back, for writes too.
    hook = ws.create_webhook("later", DYNAMIC_TEMPLATE)
    ws.receive(hook.slug, HookRequest.fake(method="POST", form={"model": "m3"}))
    assert len(ws.events()) == 4
    assert sqlitecopies.sqlite3_open(str(tmp_path / "hooklab.db")) == 1  # the store's own
    ws.close()
    assert sqlitecopies.sqlite3_open(str(tmp_path / "hooklab.db")) == 0


def test_no_read_runs_in_this_process_while_a_receiver_writes(
    tmp_path: Path, reads_here: list[str]
) -> None:
    ws = workspace(tmp_path / "hooklab.db")
    hook = ws.get_webhook("models")

    async def scenario() -> None:
        async with serving(ws) as receiver:
            for n in range(3):
                reply = await send(
                    f"{receiver.url}/hooks/{hook.slug}", "POST", form={"model": str(n)}
                )
                assert reply.status == 204
                # Read while the receiver serves: beside it, through sqlite3.
                assert len(ws.events()) == 4 + n

    run(scenario())
    assert reads_here == []
    assert len(ws.events()) == 6  # the receiver stopped: in this process again
    assert len(reads_here) == 1
    ws.close()


def test_a_connection_open_elsewhere_in_this_process_keeps_the_read_out(
    tmp_path: Path, reads_here: list[str]
) -> None:
    ws = workspace(tmp_path / "hooklab.db")
    outbox = ws.store.outbox()  # a connection of hooklab's own, as a forwarder holds
    assert len(ws.events()) == 3
    outbox.close()
    own = sqlite3.connect(tmp_path / "hooklab.db")  # and one hooklab does not know of
    own.execute("SELECT count(*) FROM events").fetchall()
    assert len(ws.requests()) == 3
    assert reads_here == []
    own.close()
    assert len(ws.requests()) == 3
    assert len(reads_here) == 1
    ws.close()


def test_a_store_in_a_transaction_does_not_lend_its_connection(
    tmp_path: Path, reads_here: list[str]
) -> None:
    ws = workspace(tmp_path / "hooklab.db")
    assert isinstance(ws.store, SqliteStore)
    with ws.store.transaction():
        assert len(ws.events()) == 3
    assert reads_here == []
    ws.close()


def test_a_connection_waits_to_open_while_the_driver_reads_the_file(tmp_path: Path) -> None:
    ws = workspace(tmp_path / "hooklab.db")
    path = ws.path
    ws.close()
    opened = threading.Event()

    def open_one() -> None:
        connect(path).close()
        opened.set()

    with sqlitecopies.adbc_turn(path) as turn:
        assert turn  # nothing here has the file open
        opener = threading.Thread(target=open_one)
        opener.start()
        assert not opened.wait(0.3)
    assert opened.wait(10)
    opener.join()
    with connect(path), sqlitecopies.adbc_turn(path) as turn:
        assert not turn


def test_a_connection_left_to_the_collector_counts_as_closed(tmp_path: Path) -> None:
    path = str(tmp_path / "hooklab.db")
    db = connect(path)
    assert sqlitecopies.sqlite3_open(path) == 1
    del db
    gc.collect()  # a connection sits in a reference cycle (its statement cache)
    assert sqlitecopies.sqlite3_open(path) == 0


WRITER = """
import sqlite3, sys
db = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=0)
db.execute("CREATE TABLE IF NOT EXISTS marks (n INTEGER)")
print("ready", flush=True)
for n in range(int(sys.argv[2])):
    db.execute("BEGIN IMMEDIATE")  # refused at once (no timeout) if a lock were held
    db.execute("INSERT INTO marks VALUES (?)", (n,))
    db.execute("COMMIT")
print("written", flush=True)
sys.stdin.readline()  # the reads have ended
print(db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0], flush=True)
print(db.execute("PRAGMA integrity_check").fetchone()[0], flush=True)
"""


def test_a_writer_in_another_process_writes_on_while_this_one_reads(
    tmp_path: Path, reads_here: list[str]
) -> None:
    ws = workspace(tmp_path / "hooklab.db", requests=200)
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, ws.path, "3000"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert writer.stdin is not None and writer.stdout is not None
    assert writer.stdout.readline() == "ready\n"
    written = threading.Event()
    sizes: list[int] = []

    def read_on() -> None:
        while not written.is_set() or len(sizes) < 3:
            sizes.append(len(ws.events()))

    reader = threading.Thread(target=read_on)
    reader.start()
    assert writer.stdout.readline() == "written\n"  # every commit let through at once
    written.set()
    reader.join()
    said, _ = writer.communicate("check\n", timeout=60)
    # No read transaction was left open: the checkpoint copied the whole WAL and emptied it.
    assert said.split() == ["0", "ok"]
    assert writer.returncode == 0
    assert set(sizes) == {200} and len(reads_here) == len(sizes)
    assert isinstance(ws.store, SqliteStore)
    assert ws.store._query("SELECT count(*) FROM marks") == [(3000,)]
    ws.close()


def descriptors_of(path: str) -> list[str]:
    """The names this process has open among the file, its -wal and its -shm."""
    folder = Path("/proc/self/fd")
    if not folder.is_dir():
        pytest.skip("needs /proc/self/fd")
    real = str(Path(path).resolve())
    names = []
    for fd in folder.iterdir():
        try:
            target = str(fd.readlink())
        except OSError:
            continue
        if target.startswith(real):
            names.append(target[len(real) - len(Path(real).name) :])
    return sorted(names)


def test_a_read_stopped_half_way_closes_the_driver_before_the_store_opens_again(
    tmp_path: Path, reads_here: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = workspace(tmp_path / "hooklab.db")
    held = descriptors_of(ws.path)  # the store's own
    stopped = {"events": 0, "requests": 0}

    def interrupted(batch: object, columns: list[readout.Column]) -> object:
        stopped["events" if columns[1].name == "occurred" else "requests"] += 1
        raise KeyboardInterrupt  # as a user stopping the cell, with the batches half read

    with monkeypatch.context() as patched:
        patched.setattr(readout, "convert", interrupted)
        for read in (ws.events, ws.requests):
            with pytest.raises(KeyboardInterrupt):  # said as it is, not as a failure to close
                read()
    assert stopped == {"events": 1, "requests": 1} and len(reads_here) == 2
    # Nothing of the driver's is left open beside the store's connection, which is back, and
    # no thread is left reading ahead.
    assert descriptors_of(ws.path) == held
    assert not [t for t in threading.enumerate() if t.name == "hooklab-read-ahead"]
    assert len(ws.events()) == 3
    assert len(reads_here) == 3  # the file is this process's own again: read here
    ws.close()
    assert descriptors_of(ws.path) == []


def test_a_stored_value_a_read_cannot_take_fails_it_and_leaves_nothing_open(
    tmp_path: Path, reads_here: list[str]
) -> None:
    ws = workspace(tmp_path / "hooklab.db")
    held = descriptors_of(ws.path)
    db = sqlite3.connect(ws.path)
    db.execute("UPDATE events SET occurred = 'yesterday' WHERE seq = 2")
    db.commit()
    db.close()
    with pytest.raises(pa.ArrowInvalid, match="yesterday"):
        ws.events()
    assert len(reads_here) == 1
    assert descriptors_of(ws.path) == held
    assert len(ws.requests()) == 3 and len(reads_here) == 2
    ws.close()


HOLDER = """
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("PRAGMA locking_mode=EXCLUSIVE")  # as a process closing the file holds it, briefly
db.execute("BEGIN IMMEDIATE")
db.execute("UPDATE settings SET value = value")
db.execute("COMMIT")
print("holding", flush=True)
time.sleep(float(sys.argv[2]))
db.close()
"""


def test_a_read_here_waits_while_another_process_holds_the_file_for_a_moment(
    tmp_path: Path, reads_here: list[str]
) -> None:
    ws = workspace(tmp_path / "hooklab.db")
    ws.store.set_setting("mark", "1")
    path = ws.path
    ws.close()  # nothing of this process holds the file: another may lock it whole
    for table in ("events", "requests"):
        holder = subprocess.Popen(
            [sys.executable, "-c", HOLDER, path, "0.5"], stdout=subprocess.PIPE, text=True
        )
        assert holder.stdout is not None and holder.stdout.readline() == "holding\n"
        # Waited, as sqlite3 does, instead of failing at once with "database is locked".
        assert readout.Reader(path).table(table).num_rows == 3
        holder.communicate(timeout=30)
        assert holder.returncode == 0
    assert len(reads_here) == 2


def test_a_file_whose_name_starts_like_a_uri_is_counted_as_any_other(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    ws = workspace(Path("file:hooklab.db"))  # a file of that name, here: not a URI
    assert sqlitecopies.sqlite3_open(str(tmp_path / "file:hooklab.db")) == 1
    path = ws.path
    ws.close()
    opened = threading.Event()

    def open_one() -> None:
        connect(path).close()
        opened.set()

    with sqlitecopies.adbc_turn(str(tmp_path / "file:hooklab.db")) as turn:
        assert turn
        opener = threading.Thread(target=open_one)
        opener.start()
        assert not opened.wait(0.3)  # it waits for the read, as by any other name
    assert opened.wait(10)
    opener.join()


def test_ctrl_c_pressed_during_reads_again_and_again_leaves_the_store_open(
    tmp_path: Path, reads_here: list[str]
) -> None:
    # Each read here closes the store's connection and opens it again after: an interrupt
    # that lands while it opens must not leave the store closed for good.
    ws = workspace(tmp_path / "hooklab.db")
    assert len(ws.events_arrow()) == 3  # the driver imported: not interrupted half way
    armed, done = [False], threading.Event()

    def interrupt(number: int, frame: object) -> None:
        if armed[0]:  # only inside the read below: once, until armed again
            armed[0] = False
            raise KeyboardInterrupt

    def press() -> None:
        while not done.is_set():
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.0003)

    previous = signal.signal(signal.SIGINT, interrupt)
    presser = threading.Thread(target=press)
    try:
        presser.start()
        for _ in range(400):
            try:
                armed[0] = True
                ws.events_arrow()
                armed[0] = False
            except KeyboardInterrupt:
                pass
    finally:
        armed[0] = False
        done.set()
        presser.join()
        signal.signal(signal.SIGINT, previous)
    assert reads_here  # some reads ran here, between the presses
    assert len(ws.events()) == 3
    ws.receive(ws.list_webhooks()[0].slug, HookRequest.fake(method="POST", form={"model": "m"}))
    assert len(ws.events()) == 4
    ws.close()
