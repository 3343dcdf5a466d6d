"""Rows as `hooklab store copy` moves them between stores, whatever their backends.

A dumped row is a dict of plain values: times as datetimes, flags as booleans, JSON as its
text, bodies as bytes. Each table has a key that makes loading it twice harmless: its id (or
a setting's key). Requests and events are read in the order they were stored, by `seq`, which
is not copied: the destination numbers them in the same order.

A batch is bounded twice: by rows, and for requests and events by bytes too, so that a copy
of large bodies holds a few tens of megabytes at a time, not thousands of bodies of 1.5 MB.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from hooklab.store.rows import TABLES, Flag, Time, as_time, check_table

if TYPE_CHECKING:
    from hooklab.store.contract import Store

COLUMNS: dict[str, tuple[str, ...]] = {
    "service_accounts": ("id", "name", "key_hash", "created"),
    "webhooks": (
        "id", "name", "description", "template", "enabled", "service_account_id", "slug",
        "created", "updated", "signature_preset", "signature_secret",
    ),
    "settings": ("key", "value"),
    "requests": (
        "id", "webhook_id", "method", "path", "query", "headers", "body", "received", "client",
        "status", "error", "rendered",
    ),
    "events": (
        "id", "request_id", "webhook_id", "event", "occurred", "received", "resource",
        "related", "payload", "follows", "failed", "error",
    ),
}  # fmt: skip
TIMES = {"created", "updated", "received", "occurred"}
FLAGS = {"enabled", "failed"}
KEYS = {"service_accounts": "id", "webhooks": "id", "settings": "key", "requests": "id"}
ORDERED = {"requests", "events"}  # read by seq; the small tables whole
# What makes a request or an event large: the columns whose sizes a batch adds up.
SIZED = {
    "requests": ("body", "headers", "rendered", "error", "query", "path"),
    "events": ("payload", "resource", "related", "error", "event"),
}
JSON = {"headers", "resource", "related", "payload"}  # json in PostgreSQL, text in SQLite
BATCH_ROWS = 5_000
BATCH_BYTES = 32 * 1024 * 1024


def size_query(
    table: str, after: int, limit: int, mark: str, length: Callable[[str], str]
) -> tuple[str, list[Any]]:
    """The sizes, in bytes, of the rows `dump_query` reads past `after` (up to `limit`), in
    the same order; `length(column)` is the dialect's SQL for a column's length."""
    total = " + ".join(f"coalesce({length(column)}, 0)" for column in SIZED[check_table(table)])
    return f"SELECT {total} FROM {table} WHERE seq > {mark} ORDER BY seq LIMIT {mark}", [
        after,
        limit,
    ]


def rows_within(sizes: Iterable[int], budget: int) -> int:
    """How many rows, from the first, fit in `budget` bytes: at least one, so that a row
    larger than the budget is copied alone.

    >>> rows_within([10, 10, 10], 25), rows_within([40, 1], 25), rows_within([], 25)
    (2, 1, 0)
    """
    count = total = 0
    for size in sizes:
        total += size
        if count and total > budget:
            break
        count += 1
    return count


def dump_query(table: str, after: int, limit: int, mark: str) -> tuple[str, list[Any]]:
    columns = ", ".join(COLUMNS[check_table(table)])
    if table in ORDERED:
        sql = f"SELECT seq, {columns} FROM {table} WHERE seq > {mark} ORDER BY seq LIMIT {mark}"
        return sql, [after, limit]
    key = KEYS[table]
    return f"SELECT {columns} FROM {table} ORDER BY {key} LIMIT {mark} OFFSET {mark}", [
        limit,
        after,
    ]


def dumped(
    table: str, after: int, names: Sequence[str], rows: Sequence[Sequence[Any]]
) -> tuple[int, list[dict[str, Any]]]:
    """Rows from `dump_query` as plain values, and the position after them."""
    values = []
    for row in rows:
        item = dict(zip(names, row, strict=True))
        for name in TIMES & item.keys():
            if item[name] is not None:
                item[name] = as_time(item[name])
        for name in FLAGS & item.keys():
            item[name] = bool(item[name])
        if "body" in item and not isinstance(item["body"], bytes):
            item["body"] = bytes(item["body"])
        values.append(item)
    if table in ORDERED:
        position = int(values[-1].pop("seq")) if values else after
        for item in values:
            item.pop("seq", None)
        return position, values
    return after + len(values), values


def load_statement(
    table: str, rows: Sequence[dict[str, Any]], mark: str, time: Time, flag: Flag
) -> tuple[str, list[tuple[Any, ...]]]:
    """An INSERT that skips rows already present, and the values of `rows` for it. Events,
    whose ids are not a unique key, are skipped when an event with that id is stored."""
    columns = COLUMNS[check_table(table)]

    def value(name: str, item: dict[str, Any]) -> Any:
        raw = item.get(name)
        if raw is None:
            return None
        if name in TIMES:
            return time(raw)
        if name in FLAGS:
            return flag(raw)
        return raw

    values = [tuple(value(name, item) for name in columns) for item in rows]
    names = ", ".join(columns)
    marks = ", ".join([mark] * len(columns))
    if table == "events":
        sql = (
            f"INSERT INTO events ({names}) SELECT {marks} "
            f"WHERE NOT EXISTS (SELECT 1 FROM events WHERE id = {mark})"
        )
        id_at = list(columns).index("id")  # each row, then its id again for the NOT EXISTS
        return sql, [(*row, row[id_at]) for row in values]
    return f"INSERT INTO {table} ({names}) VALUES ({marks}) ON CONFLICT DO NOTHING", values


COPY_INDEX = "copy_events_by_id"
"""An index on event ids that only a copy needs (to skip what it copied before): made for the
copy and dropped after it, so the receiver never pays for it."""


def copy_store(
    source: Store,
    destination: Store,
    *,
    batch: int = BATCH_ROWS,
    batch_bytes: int = BATCH_BYTES,
    progress: Callable[[int], object] | None = None,
) -> dict[str, int]:
    """Copy every table `hooklab store copy` moves, oldest rows first, from `source` into
    `destination`; returns how many rows of each were new there. Run again, it copies
    nothing twice. A batch holds at most `batch` rows, and its requests or events at most
    `batch_bytes` (but one at least). `progress(n)` hears of each batch of `n` rows read."""
    copied: dict[str, int] = {}
    destination.prepare_load()
    try:
        for table in TABLES:
            position, copied[table] = 0, 0
            while True:
                position, rows = source.dump(
                    table, after=position, limit=batch, max_bytes=batch_bytes
                )
                if not rows:
                    break
                copied[table] += destination.load(table, rows)
                if progress is not None:
                    progress(len(rows))
    finally:
        destination.finish_load()
    return copied


def total_rows(store: Store) -> int:
    """How many rows a copy of `store` reads."""
    return sum(store.count(table) for table in TABLES)
