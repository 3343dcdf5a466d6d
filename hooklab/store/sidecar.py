"""A helper process that reads SQLite files through ADBC's SQLite driver, answering in Arrow.

ADBC's SQLite driver carries its own copy of SQLite. Two copies of SQLite in one process break
each other's locks on the same database: POSIX locks belong to the process, and closing any
file descriptor of a file releases every lock the process holds on it (SQLite's "How To Corrupt
An SQLite Database File", section 2.2.1). The store keeps its file open through Python's
sqlite3, so the driver runs here, in a process of its own, like any other reader of the file.

Each request is one JSON line on stdin: `{"op": "open", "location": PATH}` (a connection whose
queries all read one snapshot, until the next open or `{"op": "close"}`), or `{"op": "query",
"sql": ..., "params": [...], "batch_rows": N, "shared": FOLDER or null, "times": [column
numbers of ISO 8601 text to read as UTC timestamps]}`. Each answer is a JSON
line: `{"error": TEXT}`, or `{"stream": true}` followed by an Arrow IPC stream of the result
and a JSON line `{"error": null}` (or the error that cut the stream short). With a `shared`
folder (shared memory, /dev/shm), the batches go through files instead, which the reading
process maps without copying: `{"stream": true, "folder": ...}`, then `{"batch": PATH}` for
each, then `{"end": true, "error": ...}`; the reading process takes each file and answers with
a line of its own, and at most WINDOW wait. `{"ok": true}` answers the rest.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from typing import IO, Any

# Batches written to shared memory and not yet taken by the reading process, at most.
WINDOW = 2

# It runs as a script (see `hooklab.store.snapshots`) and imports only pyarrow and the driver:
# not hooklab, nor the pandas that ADBC's DB-API module brings.


# How long a read of a SQLite file waits for a lock that another process holds a moment (the
# last connection to close a file checkpoints it under an exclusive lock), as sqlite3 waits.
BUSY_MS = 5000


def connect(driver: Any, location: str, database: Any = None) -> tuple[Any, Any]:
    """A database and a connection of ADBC `driver` (its module), every query until it closes
    reading one snapshot; on a SQLite file, one that waits out a lock held a moment. The
    connection is made on `database` when one is given (which is then not closed here)."""
    import adbc_driver_manager as adbc

    given = database is not None
    database = database if given else driver.connect(location)
    connection = None
    try:
        connection = adbc.AdbcConnection(database)
        if driver.__name__ == "adbc_driver_sqlite":  # which else fails at once: "locked"
            reader, statement = run(connection, f"PRAGMA busy_timeout = {BUSY_MS}", [], {})
            try:
                reader.close()
            finally:
                statement.close()
        connection.set_autocommit(False)
    except BaseException:
        try:
            if connection is not None:
                connection.close()
        finally:
            if not given:
                database.close()
        raise
    return database, connection


def run(connection: Any, sql: str, params: list[Any], options: dict[str, str]) -> Any:
    """The result of a query, as a pyarrow RecordBatchReader, and its statement (to close)."""
    import adbc_driver_manager as adbc
    import pyarrow as pa

    statement = adbc.AdbcStatement(connection)
    try:
        if options:
            statement.set_options(**options)
        statement.set_sql_query(sql)
        if params:
            values = [pa.array([value]) for value in params]
            names = [str(i) for i in range(len(values))]
            statement.bind(pa.RecordBatch.from_arrays(values, names=names))
        stream, _ = statement.execute_query()
        return pa.RecordBatchReader._import_from_c(stream.address), statement
    except BaseException:
        statement.close()
        raise


def serve(requests: IO[bytes], answers: IO[bytes]) -> None:
    import adbc_driver_sqlite

    database: Any = None
    connection: Any = None
    folder: str | None = None  # where batches go through shared memory, made on first use

    def say(message: dict[str, Any]) -> None:
        answers.write(json.dumps(message).encode() + b"\n")
        answers.flush()

    def close() -> None:
        nonlocal database, connection
        if connection is not None:
            connection.close()
            database.close()
        database = connection = None

    try:
        for line in requests:
            request = json.loads(line)
            if request["op"] in ("open", "close"):
                close()
                if request["op"] == "open":
                    try:
                        database, connection = connect(adbc_driver_sqlite, request["location"])
                    except Exception as exc:
                        say({"error": str(exc)})
                        continue
                say({"ok": True})
                continue
            try:
                # The driver types each column from the first `batch_rows` rows it reads.
                options = {"adbc.sqlite.query.batch_rows": str(request["batch_rows"])}
                reader, statement = run(connection, request["sql"], request["params"], options)
            except Exception as exc:
                say({"error": str(exc)})
                continue
            if request.get("shared") and folder is None:
                folder = tempfile.mkdtemp(prefix="hooklab-", dir=request["shared"])
            try:
                schema, batches = _with_times(reader, request.get("times") or [])
                if request.get("shared"):
                    _through_files(batches, str(folder), say, requests)
                else:
                    _through_pipe(schema, batches, say, answers)
            finally:
                reader.close()
                statement.close()
    finally:
        close()
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)


def _with_times(reader: Any, times: list[int]) -> tuple[Any, Iterator[Any]]:
    """The result's schema and batches, the columns numbered in `times` (ISO 8601 text)
    made UTC timestamps here: what crosses to the reading process is then 8 bytes a time."""
    import pyarrow as pa

    if not times:
        return reader.schema, iter(reader)
    kind = pa.timestamp("us", tz="UTC")
    schema = reader.schema
    for index in times:
        schema = schema.set(index, schema.field(index).with_type(kind))

    def timed(batch: Any) -> Any:
        columns = [c.cast(kind) if i in times else c for i, c in enumerate(batch.columns)]
        return pa.RecordBatch.from_arrays(columns, schema=schema)

    return schema, (timed(batch) for batch in reader)


def _through_pipe(
    schema: Any, batches: Iterator[Any], say: Callable[[dict[str, Any]], None], answers: IO[bytes]
) -> None:
    """The result as one Arrow IPC stream on the pipe, then its end."""
    import pyarrow as pa

    say({"stream": True})
    error = None
    with pa.ipc.new_stream(answers, schema) as writer:
        try:
            for batch in batches:
                writer.write_batch(batch)
        except Exception as exc:  # a stream cut short: its end, then why
            error = str(exc)
    say({"error": error})


def _through_files(
    batches: Iterator[Any], folder: str, say: Callable[[dict[str, Any]], None], acks: IO[bytes]
) -> None:
    """Each batch as a file in shared memory, named on the pipe: the reading process maps it
    without a copy, removes it and says so (`ack`). At most WINDOW wait to be taken."""
    import pyarrow as pa

    say({"stream": True, "folder": folder})
    waiting, error = 0, None
    try:
        for number, batch in enumerate(batches):
            path = os.path.join(folder, f"{number}.arrow")
            with pa.OSFile(path, "wb") as sink, pa.ipc.new_stream(sink, batch.schema) as writer:
                writer.write_batch(batch)
            say({"batch": path})
            waiting += 1
            if waiting >= WINDOW:
                _ack(acks)
                waiting -= 1
    except Exception as exc:  # cut short: the end, then why
        error = str(exc)
    say({"end": True, "error": error})
    for _ in range(waiting):
        _ack(acks)


def _ack(acks: IO[bytes]) -> None:
    if not acks.readline():  # the reading process is gone
        raise SystemExit(0)


if __name__ == "__main__":
    serve(sys.stdin.buffer, sys.stdout.buffer)
