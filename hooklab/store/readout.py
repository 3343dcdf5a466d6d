"""The stored history as Arrow: one reader for every store, whose SQL differs only by dialect.

Events and requests are read by ADBC (the Arrow project's own database drivers) straight into
Arrow record batches (`hooklab.store.snapshots` says where that runs; in this process, the
next batch is read in a thread while the last is converted, `hooklab.store.readahead`). The
filters and the limit are worked out in SQL; times, flags, content types
(`hooklab.store.headertext`), webhook names (one lookup of the few webhooks), resource labels
and related roles (`hooklab.store.resources`) in Arrow. No Python code runs per row.

A store is named by its location: a SQLite file's path, or a PostgreSQL URL.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass, replace
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from hooklab.store.arrowpool import system_memory
from hooklab.store.contract import Store
from hooklab.store.dialects import Reading, SQLite, dialect_of
from hooklab.store.headertext import content_types
from hooklab.store.resources import Spread
from hooklab.store.snapshots import InProcess, Local, Sidecar, Snapshot
from hooklab.store.sqlitecopies import adbc_turn

__all__ = ["JSON_COLUMNS", "Reader", "Reading", "dialect_of"]

# Rows a batch holds: small enough that the sidecar reads the next while this process takes
# in the last, large enough that per-batch costs stay small.
BATCH_ROWS = 16_384
# A read runs in this process when it is small: up to LOCAL_ROWS rows, or LOCAL_BYTES of
# stored text (estimated from the newest rows) in at most LOCAL_MOST rows. Past that, the
# sidecar's start (about 0.15 s) costs less than Python's sqlite3 does per row and per byte.
LOCAL_ROWS = 2_000
LOCAL_BYTES = 32 << 20
LOCAL_MOST = 40_000
# The bytes of a row that cost the most to read through sqlite3.
_TEXTS = {
    "events": "length(CAST(resource AS BLOB)) + length(CAST(related AS BLOB))"
    " + length(CAST(payload AS BLOB))",
    "requests": "length(body) + length(CAST(headers AS BLOB))",
}
# Whether ADBC's SQLite driver may read a file in this process when nothing else in it has the
# file open (`sqlitecopies`): no helper process to start, no Python per row.
IN_PROCESS = True
# An events batch is copied into buffers of its own (`_own`) when what it keeps is at most this
# many times what that frees; the bytes a row's times take as text (two times, with offsets).
FREED_SHARE = 4
_TEXT_TIMES_BYTES = 2 * (32 + 4) + 8
TIME = pa.timestamp("us", tz="UTC")
EVERY_ROW = Reading()
# Columns whose text is JSON: the frame reads each cell as the value it holds.
JSON_COLUMNS = frozenset({"related", "payload", "headers"})


@dataclass(frozen=True)
class Column:
    """One column of a read: its name, its SQL, the parameters the SQL binds, its type in the
    first (typing) row, and what Arrow makes of the values read. A column `of` another is not
    read: its values are made (`convert`) from that column's as read."""

    name: str
    sql: str = ""
    params: tuple[Any, ...] = ()
    first: str = "''"
    convert: Callable[[pa.ChunkedArray | pa.Array], pa.Array] | None = None
    of: str | None = None


# A time the typing row holds (any would do: the row is dropped).
_A_TIME = "'1970-01-01T00:00:00+00:00'"


def _times(values: pa.Array) -> pa.Array:
    return values.cast(TIME)


def _flags(values: pa.Array) -> pa.Array:
    return values if pa.types.is_boolean(values.type) else pc.not_equal(values, 0)


def _texts(values: pa.Array) -> pa.Array:
    """Bytes as UTF-8 text, undecodable bytes replaced (as `HookRequest.body_text`)."""
    try:
        return values.cast(pa.string())
    except pa.ArrowInvalid:  # rare: only the bodies that are not UTF-8 are decoded one by one
        valid = [b.decode("utf-8", errors="replace") for b in values.to_pylist()]
        return pa.array(valid, type=pa.string())


def event_columns() -> list[Column]:
    """The columns of an events read as SQL gives them: the resource's labels and the related
    resources' roles are spread from their text afterwards (`Spread`)."""
    return [
        Column("id", "e.id"),
        Column("occurred", "e.occurred", first=_A_TIME, convert=_times),
        Column("received", "e.received", first=_A_TIME, convert=_times),
        Column("event", "e.event"),
        Column("resource", "e.resource"),
        Column("related", "e.related"),
        Column("payload", "e.payload"),
        Column("webhook_id", "e.webhook_id"),
        Column("webhook_name", of="webhook_id"),  # named after the read (`_named`)
        Column("request_id", "e.request_id"),
        Column("failed", "e.failed", first="0", convert=_flags),
        Column("error", "e.error"),
    ]


def request_columns(dialect: SQLite) -> list[Column]:
    return [
        Column("id", "r.id"),
        Column("received", "r.received", first=_A_TIME, convert=_times),
        Column("webhook_id", "r.webhook_id"),
        Column("webhook_name", of="webhook_id"),
        Column("method", "r.method"),
        Column("path", "r.path"),
        Column("query", "r.query"),
        Column("content_type", of="headers", convert=content_types),
        Column("headers", "r.headers"),
        Column("body", "r.body", first="X''", convert=_texts),
        Column("size", dialect.size(), first="0"),
        Column("client", "r.client"),
        Column("status", "r.status", first="0"),
        Column("error", "r.error"),
    ]


class Reader:
    """Reads one store's history as Arrow record batches."""

    def __init__(
        self,
        location: str | None,
        shared: tuple[sqlite3.Connection, Any] | None = None,
        *,
        read_only: str | None = None,
        lend: Callable[[], AbstractContextManager[bool]] | None = None,
    ) -> None:
        """`location`: the store's file or URL; `shared`: the connection and lock of an
        in-memory store, which no other connection can see; `read_only`: why a SQLite file
        cannot be written (it is then read in this process, read-only); `lend`: the store's
        own connection to a SQLite file, closed while a read runs when nothing uses it."""
        self.location = location
        self.shared = shared
        self.read_only = read_only
        self.lend = lend
        self.dialect = dialect_of(location or ":memory:")

    @classmethod
    def of(cls, store: Store) -> Reader:
        """The reader of a store (SQLite or PostgreSQL), where the store says to read it."""
        source = store.history_source()
        return cls(source.location, source.shared, read_only=source.read_only, lend=source.lend)

    def table(self, table: str, reading: Reading = EVERY_ROW) -> pa.Table:
        """The rows of `table` (events or requests) a reading selects, as one Arrow table."""
        with system_memory(), self._in_process() as snapshot:
            return self._table(table, reading, snapshot)

    @contextmanager
    def _in_process(self) -> Iterator[Snapshot | None]:
        """A snapshot of ADBC's SQLite driver in this process, for a whole read, when it can
        have the file to itself here (`sqlitecopies`): the store's own connection is lent
        (closed) for the read, and no other sqlite3 connection to the file is open. None when
        it cannot, or the store is not a SQLite file."""
        if (
            not IN_PROCESS
            or self.dialect.name != "sqlite"
            or not self.location
            or self.shared
            or self.read_only
        ):
            yield None
            return
        with ExitStack() as stack:
            if self.lend is not None:
                stack.enter_context(self.lend())
            if stack.enter_context(adbc_turn(self.location)):
                import adbc_driver_sqlite

                snapshot = InProcess(adbc_driver_sqlite, self.location, sqlite=True)
                stack.callback(snapshot.close)  # closed before the turn ends
                yield snapshot
                return
        yield None  # the store's connection is back: read as before

    def _table(self, table: str, reading: Reading, given: Snapshot | None = None) -> pa.Table:
        _, snapshot, rows, params = self._open(table, reading, given, counted=False)
        try:
            columns = self._columns(table)
            raw = self._raw(snapshot, table, columns, rows, params, reading)
            if table == "requests":
                return pa.Table.from_batches(list(raw), empty_schema(columns))
            spread = Spread()
            parts = []
            for batch in raw:
                labels, roles = spread.learn(batch["resource"], batch["related"])
                kept = batch.drop_columns(["resource"])
                parts.append((_own(kept, batch["resource"].nbytes), labels, roles))
            schema = event_schema(spread)
            return pa.Table.from_batches(
                [events_batch(spread, schema, *part) for part in parts], schema
            )
        finally:
            if snapshot is not given:
                snapshot.close()

    def read(self, table: str, reading: Reading = EVERY_ROW) -> tuple[int, pa.RecordBatchReader]:
        """How many rows of `table` a reading selects, and a reader of them in batches, which
        holds one batch at a time. For events, a first pass over the resources learns the
        label and role columns that every batch then has."""
        count, snapshot, rows, params = self._open(table, reading)
        try:
            columns = self._columns(table)
            if table == "requests":
                schema = empty_schema(columns)
                batches = self._raw(snapshot, table, columns, rows, params, reading)
            else:
                spread = Spread()
                for batch in self._raw(snapshot, table, _SPREAD, rows, params, reading):
                    spread.learn(batch["resource"], batch["related"])
                schema = event_schema(spread)
                raw = self._raw(snapshot, table, columns, rows, params, reading)
                batches = (
                    events_batch(spread, schema, b, *spread.learn(b["resource"], b["related"]))
                    for b in raw
                )
        except BaseException:
            snapshot.close()
            raise
        return count, pa.RecordBatchReader.from_batches(schema, _closing(batches, snapshot))

    def count(self, table: str, reading: Reading = EVERY_ROW) -> int:
        """How many rows a read would give (an index answers most filters)."""
        rows, row_params = self.dialect.rows(table, table[0], reading)
        snapshot = self._snapshot()
        try:
            return int(snapshot.rows(self._sql(_count(table, rows)), row_params)[0][0])
        finally:
            snapshot.close()

    def _snapshot(self) -> Snapshot:
        """Where a read starts: sqlite3 in this process, or PostgreSQL's driver."""
        if self.dialect.name == "postgresql" and self.location:
            import adbc_driver_postgresql

            return InProcess(adbc_driver_postgresql, self.location)
        return Local(self.location, self.shared, read_only=self.read_only)

    def _sql(self, text: str) -> str:
        return self.dialect.sql(text)

    def plan(self, table: str, reading: Reading = EVERY_ROW) -> dict[str, list[str]]:
        """How SQLite answers each query of a read (EXPLAIN QUERY PLAN): the steps of the
        count, of the first pass over the resources (events only), and of the rows."""
        if self.dialect.name != "sqlite":
            raise NotImplementedError("plans are SQLite's (EXPLAIN QUERY PLAN)")
        alias = table[0]
        rows, params = self.dialect.rows(table, alias, reading)
        columns = self._columns(table)
        queries = {"count": (_count(table, rows), params)}
        if table == "events":
            queries["resources"] = select(self.dialect, table, _SPREAD, rows, params, reading)
        queries["rows"] = select(self.dialect, table, columns, rows, params, reading)
        local = Local(self.location, self.shared, read_only=self.read_only)
        try:
            return {
                name: [str(step[3]) for step in local.rows(f"EXPLAIN QUERY PLAN {sql}", args)]
                for name, (sql, args) in queries.items()
            }
        finally:
            local.close()

    def _open(
        self, table: str, reading: Reading, given: Snapshot | None = None, *, counted: bool = True
    ) -> tuple[int, Snapshot, str, list[Any]]:
        """The count of a read (-1 if not `counted` and not needed), and the snapshot it
        reads: the one `given`; else in this process when the read is small (see
        `LOCAL_ROWS`) or the store in memory, else in the sidecar process."""
        if table not in ("events", "requests"):
            raise ValueError(f"no history of {table!r}: events or requests")
        rows, params = self.dialect.rows(table, table[0], reading)
        local = given or self._snapshot()
        if not counted and not isinstance(local, Local):  # read there, whatever its size
            return -1, local, rows, params
        try:
            count = int(local.rows(self._sql(_count(table, rows)), params)[0][0])
        except BaseException:
            if local is not given:
                local.close()
            raise
        if not isinstance(local, Local):  # PostgreSQL, or ADBC in this process: read there
            return count, local, rows, params
        if self.shared or self.read_only or not self.location or count <= LOCAL_ROWS:
            return count, local, rows, params
        if count <= LOCAL_MOST:
            newest = f"SELECT * FROM {table} ORDER BY seq DESC LIMIT 64"
            size = local.rows(f"SELECT avg({_TEXTS[table]}) FROM ({newest})", [])[0][0]
            if count * float(size or 0) <= LOCAL_BYTES:
                return count, local, rows, params
        local.close()
        return count, Sidecar(self.location), rows, params

    def _columns(self, table: str) -> list[Column]:
        return event_columns() if table == "events" else request_columns(self.dialect)

    def _raw(
        self,
        snapshot: Snapshot,
        table: str,
        columns: list[Column],
        rows: str,
        params: list[Any],
        reading: Reading,
    ) -> Iterator[pa.RecordBatch]:
        columns = _named(snapshot, columns)
        sql, args = select(self.dialect, table, columns, rows, params, reading)
        read = _read(columns)
        types = [pa.int64()] + [_read_type(c) for c in read]
        times = [i for i, column in enumerate(read, 1) if column.convert is _times]
        batches = snapshot.batches(self._sql(sql), args, types, BATCH_ROWS, times)
        return _converted(batches, columns, typed=self.dialect.typed_first_row)


# The first pass of an events read: the resources and related resources alone.
_SPREAD = [Column("resource", "e.resource"), Column("related", "e.related")]


def event_schema(spread: Spread) -> pa.Schema:
    """An events read's schema, with the label and role columns learned."""
    base = empty_schema(event_columns())
    labels, roles = spread.fields()
    fields = [base.field(name) for name in ("id", "occurred", "received", "event")]
    fields += [*labels, base.field("related"), *roles]
    fields += [base.field(name) for name in base.names[6:]]
    return pa.schema(fields)


def events_batch(
    spread: Spread,
    schema: pa.Schema,
    batch: pa.RecordBatch,
    labels: dict[str, pa.Array],
    roles: dict[str, pa.Array],
) -> pa.RecordBatch:
    """An events batch in the columns of `event_schema`: its resource spread into labels, its
    related resources' roles beside them."""
    label_arrays, role_arrays = spread.columns(batch.num_rows, labels, roles)
    arrays = [batch[name] for name in ("id", "occurred", "received", "event")]
    arrays += [*label_arrays, batch["related"], *role_arrays]
    rest = batch.schema.names
    arrays += [batch[name] for name in rest[rest.index("related") + 1 :]]
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def _own(batch: pa.RecordBatch, spread: int) -> pa.RecordBatch:
    """The batch, in buffers of its own where that frees a good share of what it was read
    with. A batch a driver hands over holds all its buffers until the last of them goes: a
    copy of the columns kept lets the rest go at once (the resources' text, `spread` bytes,
    and the times as text), while the next batch is being read. Not worth it where the
    columns kept are many times larger (payloads of kilobytes)."""
    freed = spread + _TEXT_TIMES_BYTES * batch.num_rows
    if batch.nbytes > FREED_SHARE * freed:
        return batch
    return pa.RecordBatch.from_arrays(
        [pa.concat_arrays([column]) for column in batch.columns], schema=batch.schema
    )


def _named(snapshot: Snapshot, columns: list[Column]) -> list[Column]:
    """The columns, with `webhook_name` made from the webhook ids read: each looked up in the
    webhooks as they stand in the read's snapshot (a few rows, read at once), rather than
    joined row by row in SQL. The id of a webhook deleted since has no name."""
    if not any(c.name == "webhook_name" and c.of for c in columns):
        return columns
    webhooks = snapshot.rows("SELECT id, name FROM webhooks", [])
    ids = pa.array([row[0] for row in webhooks], pa.string())
    names = pa.array([row[1] for row in webhooks], pa.string())

    def name(values: pa.Array) -> pa.Array:
        return pc.take(names, pc.index_in(values, value_set=ids))

    return [replace(c, convert=name) if c.name == "webhook_name" else c for c in columns]


def _read(columns: list[Column]) -> list[Column]:
    """The columns a query reads: those not made from another."""
    return [column for column in columns if column.of is None]


def _count(table: str, rows: str) -> str:
    return f"SELECT count(*) FROM {table} {table[0]} WHERE {rows}"


def _read_type(column: Column) -> pa.DataType:
    """The type a column has as read, before it is converted (the typing row's)."""
    return {"0": pa.int64(), "X''": pa.binary()}.get(column.first, pa.string())


def _converted(
    batches: Iterator[pa.RecordBatch], columns: list[Column], *, typed: bool
) -> Iterator[pa.RecordBatch]:
    """The batches without the typing row (if `typed`), in the columns' names and types."""
    first = typed
    for batch in batches:
        if first:
            batch, first = batch.slice(1), False
        if batch.num_rows:
            yield convert(batch, columns)


def select(
    dialect: SQLite,
    table: str,
    columns: list[Column],
    rows: str,
    row_params: list[Any],
    reading: Reading,
) -> tuple[str, list[Any]]:
    """The query of a read. SQLite's driver types each column from the first rows it reads,
    so a column empty there (`error`) would be typed wrongly: on SQLite the query starts with
    one row of each column's type, before every row (its `seq` sorts first), then dropped."""
    alias, newest = table[0], reading.newest_first
    columns = _read(columns)
    body = [f"{alias}.seq AS c0"] + [f"{c.sql} AS c{i}" for i, c in enumerate(columns, 1)]
    params = [p for c in columns for p in c.params]
    sql = f"SELECT {', '.join(body)} FROM {table} {alias} WHERE {rows}"
    if dialect.typed_first_row:
        head = [("9223372036854775807" if newest else "-1") + " AS c0"]
        head += [f"{c.first} AS c{i}" for i, c in enumerate(columns, 1)]
        sql = f"SELECT {', '.join(head)} UNION ALL {sql} ORDER BY 1"
    else:
        sql += f" ORDER BY {alias}.seq"
    return sql + (" DESC" if newest else ""), params + row_params


def convert(batch: pa.RecordBatch, columns: list[Column]) -> pa.RecordBatch:
    """A batch as read (c0 the row number, then each column read) in the columns' names and
    types, the columns made from another among them."""
    position = {c.name: i for i, c in enumerate(_read(columns), 1)}
    arrays = []
    for column in columns:
        values = batch.column(position[column.of or column.name])
        if isinstance(values.type, pa.BaseExtensionType):  # PostgreSQL's json: its text
            values = values.storage
        if column.convert is not None:
            values = column.convert(values)
        elif pa.types.is_null(values.type) or (
            pa.types.is_integer(values.type) and column.first == "''"
        ):
            values = values.cast(pa.string())
        elif pa.types.is_integer(values.type) and values.type != pa.int64():
            values = values.cast(pa.int64())  # PostgreSQL's integer
        arrays.append(values)
    return pa.RecordBatch.from_arrays(arrays, names=[c.name for c in columns])


def empty_schema(columns: list[Column]) -> pa.Schema:
    """The schema of a read that found nothing."""
    types = {"failed": pa.bool_(), "size": pa.int64(), "status": pa.int64()}
    fields = [
        pa.field(c.name, TIME if c.convert is _times else types.get(c.name, pa.string()))
        for c in columns
    ]
    return pa.schema(fields)


def _closing(batches: Iterator[pa.RecordBatch], snapshot: Snapshot) -> Iterator[pa.RecordBatch]:
    """The batches; the snapshot closed after the last, or when they are dropped."""
    try:
        yield from batches
    finally:
        snapshot.close()
