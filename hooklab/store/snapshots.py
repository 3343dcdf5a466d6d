"""Where the readout's queries run: one snapshot of a store, read through ADBC in this process
(PostgreSQL; SQLite while nothing else in the process has the file open), through sqlite3
(small reads, in-memory stores) or through ADBC in the sidecar process (the rest).

Both give the same thing: rows for the small questions a read asks first (how many, which
labels), then the result as Arrow record batches, columns typed from the query's first row.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from hooklab.store.interrupts import interrupts_held
from hooklab.store.readahead import ReadAhead
from hooklab.store.sqlitefile import connect

BATCH_ROWS = 65_536
# Where the sidecar hands batches over without a copy, when this machine has it with room
# for a few batches (a container's is often 64 MB): else they go through the pipe.
SHARED_MEMORY = "/dev/shm"
SHARED_MEMORY_FREE = 1 << 30


def _shared_memory() -> str | None:
    try:
        free = os.statvfs(SHARED_MEMORY)
    except OSError:
        return None
    room = free.f_bavail * free.f_frsize
    return (
        SHARED_MEMORY if room >= SHARED_MEMORY_FREE and os.access(SHARED_MEMORY, os.W_OK) else None
    )


LOCAL_BATCH_ROWS = 2_048
# Rows a batch of SQLite's driver holds in this process: small enough that turning one into
# columns overlaps the reading of the next (`readahead`), large enough that per-batch costs
# stay small.
AHEAD_BATCH_ROWS = 2_048
AHEAD_BATCH_BYTES = 1 << 20


class Snapshot:
    """Queries that all read the store as it was when the first of them ran."""

    def rows(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        raise NotImplementedError

    def batches(
        self,
        sql: str,
        params: Sequence[Any],
        types: Sequence[pa.DataType],
        batch_rows: int,
        times: Sequence[int] = (),
    ) -> Iterator[pa.RecordBatch]:
        """The result in batches of up to `batch_rows` rows, its first row (the typing row)
        included; `types` are the columns' types, for a reader that does not type them; the
        columns numbered in `times` may come as UTC timestamps already."""
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


class Local(Snapshot):
    """Through Python's sqlite3: the store's own in-memory connection (held with its lock),
    or a connection of its own to the file."""

    def __init__(
        self,
        path: str | None,
        shared: tuple[sqlite3.Connection, Any] | None = None,
        *,
        read_only: str | None = None,
    ) -> None:
        if shared is not None:
            self.db, self.lock = shared
            self.own = False
        else:
            self.db, self.lock = connect(path or ":memory:", read_only=read_only), threading.RLock()
            self.own = True
            self.db.execute("BEGIN")  # one snapshot for every query until closed

    def rows(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        with self.lock:
            return self.db.execute(sql, params).fetchall()

    def batches(
        self,
        sql: str,
        params: Sequence[Any],
        types: Sequence[pa.DataType],
        batch_rows: int,
        times: Sequence[int] = (),
    ) -> Iterator[pa.RecordBatch]:
        names = [f"c{i}" for i in range(len(types))]
        # Text is fetched as its UTF-8 bytes, which Arrow takes as they are and checks in one
        # pass: decoding each value into a Python str and encoding it back cost five times as
        # much (GitHub deliveries) as the fetch itself.
        read_as = [pa.binary() if pa.types.is_string(k) else k for k in types]
        # Rows as Python values cost far more than in Arrow: a few at a time.
        size = min(batch_rows, LOCAL_BATCH_ROWS)
        with self.lock:
            cursor = self.db.execute(sql, params)
            try:
                while rows := self._fetch_bytes(cursor, size):
                    columns = zip(*rows, strict=True)
                    arrays = [
                        _array(values, read, kind)
                        for values, read, kind in zip(columns, read_as, types, strict=True)
                    ]
                    yield pa.RecordBatch.from_arrays(arrays, names=names)
            finally:
                # Left suspended by an interrupt, this runs when collected, maybe after the
                # connection closed (which closed the cursor already).
                with contextlib.suppress(sqlite3.ProgrammingError):
                    cursor.close()

    def _fetch_bytes(self, cursor: sqlite3.Cursor, size: int) -> list[Any]:
        """The next `size` rows, text as bytes (the connection may be the store's own: its
        text factory is put back before any other use, under the lock held)."""
        factory = self.db.text_factory
        self.db.text_factory = bytes
        try:
            return cursor.fetchmany(size)
        finally:
            self.db.text_factory = factory

    def close(self) -> None:
        if self.own:
            self.db.close()


def _array(values: Sequence[Any], read: pa.DataType, kind: pa.DataType) -> pa.Array:
    """A column of Python values as Arrow; text and bytes (`read` as binary) laid out at
    once in buffers of their exact size: Arrow's builder grows its buffers as it goes, which
    cost ten times as long and up to twice the memory for long values."""
    if read != pa.binary():
        return pa.array(values, type=read)
    count = len(values)
    mask, nulls = None, 0
    if None in values:
        valid = np.fromiter((value is not None for value in values), bool, count)
        nulls = count - int(valid.sum())
        mask = pa.array(valid).buffers()[1]
        values = [b"" if value is None else value for value in values]
    offsets = np.zeros(count + 1, np.int32)
    np.cumsum(np.fromiter(map(len, values), np.int64, count), out=offsets[1:])
    data = pa.py_buffer(b"".join(values))
    array = pa.Array.from_buffers(
        pa.binary(), count, [mask, pa.py_buffer(offsets), data], null_count=nulls
    )
    return array if read == kind else array.cast(kind)


class Sidecar(Snapshot):
    """Through ADBC's SQLite driver, in a helper process (`hooklab/store/sidecar.py`)."""

    def __init__(self, path: str) -> None:
        self.process = _take()
        try:
            self._ask({"op": "open", "location": path})
        except BaseException:
            _discard(self.process)
            raise

    def _ask(self, request: dict[str, Any]) -> dict[str, Any]:
        stdin, stdout = self.process.stdin, self.process.stdout
        assert stdin is not None and stdout is not None
        try:
            stdin.write(json.dumps(request).encode() + b"\n")
            stdin.flush()
            line = stdout.readline()
        except OSError:
            line = b""
        if not line:
            raise RuntimeError(f"hooklab's reader process stopped: {_stderr(self.process)}")
        answer: dict[str, Any] = json.loads(line)
        if answer.get("error"):
            raise RuntimeError(f"reading the store failed: {answer['error']}")
        return answer

    def _stream(
        self, sql: str, params: Sequence[Any], batch_rows: int, times: Sequence[int] = ()
    ) -> Iterator[pa.RecordBatch]:
        request = {
            "op": "query",
            "sql": sql,
            "params": list(params),
            "batch_rows": batch_rows,
            "times": list(times),
        }
        answer = self._ask({**request, "shared": _shared_memory()})
        stdin, stdout = self.process.stdin, self.process.stdout
        assert stdin is not None and stdout is not None
        folder = answer.get("folder")
        finished = False
        try:
            if folder is None:
                yield from pa.ipc.open_stream(stdout)
                trailer = json.loads(stdout.readline())
            else:
                while "batch" in (trailer := json.loads(stdout.readline() or b"{}")):
                    # Mapped, not copied: the batch's memory is the file's, freed with both.
                    with pa.memory_map(trailer["batch"]) as mapped:
                        batch = pa.ipc.open_stream(mapped).read_next_batch()
                    os.unlink(trailer["batch"])
                    stdin.write(b"taken\n")
                    stdin.flush()
                    yield batch
            finished = "error" in trailer
        finally:
            if not finished:  # abandoned half way: what is left in the pipe is lost with it
                _discard(self.process)
                if folder is not None:
                    shutil.rmtree(folder, ignore_errors=True)
                self.process = _take()
        if trailer.get("error"):
            raise RuntimeError(f"reading the store failed: {trailer['error']}")

    def rows(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        found: list[tuple[Any, ...]] = []
        for batch in self._stream(sql, params, BATCH_ROWS):
            found.extend(zip(*(column.to_pylist() for column in batch.columns), strict=True))
        return found

    def batches(
        self,
        sql: str,
        params: Sequence[Any],
        types: Sequence[pa.DataType],
        batch_rows: int,
        times: Sequence[int] = (),
    ) -> Iterator[pa.RecordBatch]:
        return self._stream(sql, params, batch_rows, times)

    def close(self) -> None:
        try:
            self._ask({"op": "close"})
        except RuntimeError:
            _discard(self.process)
            return
        _give_back(self.process)


class InProcess(Snapshot):
    """Through an ADBC driver in this process: PostgreSQL's, which shares no file with the
    store, or SQLite's while it has the file to itself in this process (`sqlitecopies`). One
    snapshot: a repeatable-read transaction (PostgreSQL), or the read transaction the driver
    holds from the first query to `close` (SQLite)."""

    def __init__(self, driver: Any, location: str, *, sqlite: bool = False) -> None:
        from hooklab.store.sidecar import connect

        self.sqlite = sqlite
        # Each query's reader and statement until closed: a read stopped half way (an error,
        # an interrupt) leaves its batches' generator suspended, and ADBC refuses to close a
        # connection whose statement is open.
        self._open: list[tuple[Any, Any]] = []
        self._ahead: list[ReadAhead[pa.RecordBatch]] = []  # batches read in a thread (`batches`)
        shared = None if sqlite else _server(driver, location)
        # A SQLite file opens at once: Ctrl-C then waits, so that no statement of the opening
        # is left open. A server may keep us waiting: Ctrl-C stops that.
        with interrupts_held() if sqlite else contextlib.nullcontext():
            self.database, self.connection = connect(driver, location, shared)
        self._owns_database = shared is None
        if sqlite:
            return
        try:
            self.rows("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ", [])
        except BaseException:
            self.close()
            raise

    def _reader(
        self, sql: str, params: Sequence[Any], options: dict[str, str] | None = None
    ) -> Iterator[pa.RecordBatch]:
        from hooklab.store.sidecar import run

        with interrupts_held():  # an interrupt between the two would leave a statement open
            opened = run(self.connection, sql, list(params), options or {})
            self._open.append(opened)
        try:
            yield from opened[0]
        finally:
            self._release(opened)

    def _release(self, opened: tuple[Any, Any]) -> None:
        """Close a query's reader and statement, once (whoever comes first: its generator
        or `close`)."""
        if opened in self._open:
            self._open.remove(opened)
            reader, statement = opened
            try:
                reader.close()
            finally:
                statement.close()

    def rows(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        found: list[tuple[Any, ...]] = []
        for batch in self._reader(sql, params):
            found.extend(zip(*(column.to_pylist() for column in batch.columns), strict=True))
        return found

    def batches(
        self,
        sql: str,
        params: Sequence[Any],
        types: Sequence[pa.DataType],
        batch_rows: int,
        times: Sequence[int] = (),
    ) -> Iterator[pa.RecordBatch]:
        if not self.sqlite:  # the server's rows, in batches of about AHEAD_BATCH_BYTES
            options = {"adbc.postgresql.batch_size_hint_bytes": str(AHEAD_BATCH_BYTES)}
            source = self._reader(sql, params, options)
        else:  # the driver types each column from the first `batch_rows` rows it reads
            options = {"adbc.sqlite.query.batch_rows": str(min(batch_rows, AHEAD_BATCH_ROWS))}
            source = self._reader(sql, params, options)
        with interrupts_held():  # a thread started must be one `close` knows of
            ahead = ReadAhead(source)
            self._ahead.append(ahead)
        return iter(ahead)

    def close(self) -> None:
        """Close what its queries left open, then the connection (its read transaction ends
        with it) and the database: nothing of the driver's stays open on the file. Ctrl-C
        waits until then: a reader closed under the thread still reading it crashes."""
        with interrupts_held():
            try:
                try:
                    try:
                        while self._ahead:  # each query's thread closes its reader
                            self._ahead.pop().stop()
                    finally:
                        while self._open:
                            self._release(self._open[-1])
                finally:
                    self.connection.close()
            finally:
                if self._owns_database:
                    self.database.close()


# PostgreSQL's driver, per server: its database reads the server's types when it starts (a
# connection of its own, about 20 ms), so one is kept for every read of this process.
_servers: dict[str, Any] = {}
_servers_lock = threading.Lock()


def _server(driver: Any, location: str) -> Any:
    with _servers_lock:
        database = _servers.get(location)
        if database is None:
            database = _servers[location] = driver.connect(location)
            if len(_servers) == 1:
                atexit.register(_close_servers)
        return database


def _close_servers() -> None:
    """At exit: a read given up before its first batch may leave its connection open, which
    the driver refuses to close the database under; the process's end closes both."""
    with _servers_lock:
        while _servers:
            with contextlib.suppress(Exception):
                _servers.popitem()[1].close()


# Helper processes waiting for work: one is started on the first read that needs it and kept
# for the next (starting one costs its imports); a read made while another is under way takes
# one more.
_idle: list[subprocess.Popen[bytes]] = []
# The sidecar runs as a script, without the working directory on its path: it imports only
# pyarrow and the driver, not hooklab, so it starts in the time pyarrow takes to import.
_RUN_SIDECAR = (
    "import runpy, sys; del sys.path[0]; runpy.run_path(sys.argv[1], run_name='__main__')"
)
_pool_lock = threading.Lock()


def _take() -> subprocess.Popen[bytes]:
    with _pool_lock:
        while _idle:
            process = _idle.pop()
            if process.poll() is None:
                return process
    return subprocess.Popen(
        [sys.executable, "-c", _RUN_SIDECAR, str(Path(__file__).with_name("sidecar.py"))],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def _give_back(process: subprocess.Popen[bytes]) -> None:
    with _pool_lock:
        _idle.append(process)


def _discard(process: subprocess.Popen[bytes]) -> None:
    """Stop a helper: its pipes closed, it removes what it keeps in shared memory and ends;
    one that does not, within a second, is killed."""
    for stream in (process.stdin, process.stdout):
        if stream is not None:
            with contextlib.suppress(OSError):
                stream.close()
    try:
        process.wait(timeout=1)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    if process.stderr is not None:
        process.stderr.close()


def _stderr(process: subprocess.Popen[bytes]) -> str:
    process.kill()
    process.wait()
    text = process.stderr.read().decode(errors="replace").strip() if process.stderr else ""
    lines = text.splitlines()
    return lines[-1] if lines else f"exit status {process.returncode}"


@atexit.register
def _stop_all() -> None:
    with _pool_lock:
        while _idle:
            _discard(_idle.pop())
