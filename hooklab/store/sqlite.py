"""The SQLite store: one file in WAL mode, the default. Every query on it is here or in the
modules it hands work to (`sqlite_history`, `outbox`, `copying`)."""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime
from typing import Any

from hooklab.core.outcome import Outcome
from hooklab.core.times import iso, utcnow
from hooklab.core.webhooks import Webhook
from hooklab.store import copying
from hooklab.store.connection import Connected
from hooklab.store.contract import (
    EVENT_COLUMNS,
    Directory,
    Feed,
    FeedRow,
    HistorySource,
    ServiceAccount,
    StoredRequest,
    StoreError,
)
from hooklab.store.filters import EVERYTHING, HistoryFilter
from hooklab.store.interrupts import interrupts_held
from hooklab.store.migrations import MIGRATIONS, statements
from hooklab.store.requestpages import DEFAULT_BATCH, request_pages
from hooklab.store.rows import (
    EVENT_INSERT_COLUMNS,
    REQUEST_COLUMNS,
    WEBHOOK_COLUMNS,
    as_time,
    check_table,
    fast_iso,
    history_conditions,
    insert_kept,
    outcome_rows,
    stored_request,
    webhook_from,
    webhook_row,
    where_sql,
)
from hooklab.store.sqlite_outbox import SqliteOutbox
from hooklab.store.sqlite_writer import SqliteWriter
from hooklab.store.sqlitefile import connect, open_database, require_migrated

__all__ = ["EVENT_COLUMNS", "ServiceAccount", "SqliteStore", "Store", "StoredRequest"]


class SqliteStore(Connected):
    """One SQLite file in WAL mode. Safe to share between the event loop and a writer thread."""

    shared = False

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = self.url = self.location = str(path)
        self._lock = threading.RLock()
        # Made private (0600, and a home's folder 0700); read-only, with the reason in
        # `read_only`, when it cannot be written.
        try:
            self._db, self.read_only = open_database(self.path)
            self._db.execute("PRAGMA journal_mode=WAL")
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open the store {self.path}: {exc}") from None
        self._set_up()
        self._migrate()
        self._directory: Directory | None = None
        self._directory_version = -1
        self._attached = 0  # writers using the store's connection now

    def _set_up(self) -> None:
        # NORMAL in WAL mode: a committed transaction survives the process being killed.
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._db.execute("PRAGMA busy_timeout=5000")

    def __repr__(self) -> str:
        return f"SqliteStore({self.path!r})"

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def attach(self) -> None:
        """A writer uses the store's connection from now on, until `detach`: its history is
        then read beside it (`lent`)."""
        with self._lock:
            self._attached += 1

    def detach(self) -> None:
        with self._lock:
            self._attached -= 1

    @contextmanager
    def lent(self) -> Iterator[bool]:
        """The store's connection closed for the block (True), so that a reader with its own
        copy of SQLite may read the file in this process (`sqlitecopies`): only when nothing
        uses the store now (no writer attached, no transaction, no other thread in a query).
        Other threads' queries wait for the block to end; the connection opens again after."""
        if self.path == ":memory:" or self.read_only is not None or self._attached:
            yield False
            return
        if not self._lock.acquire(blocking=False):
            yield False
            return
        try:
            file = self.open_file()  # absolute: the working directory may have changed
            if self._attached or self._db.in_transaction or file is None:
                yield False
                return
            try:  # closed inside: an interrupt between the close and the read still reopens
                self._db.close()
                yield True
            finally:
                with interrupts_held():  # an interrupt here would leave the store closed
                    self._db = connect(file)
                    self._set_up()
                    self._directory_version = -1  # data_version is the connection's own
        finally:
            self._lock.release()

    def _migrate(self) -> None:
        if self.read_only is not None:
            require_migrated(self._db, [name for name, _ in MIGRATIONS], self.read_only)
            return
        with self.transaction() as db:
            db.execute(
                "CREATE TABLE IF NOT EXISTS migrations "
                "(name TEXT PRIMARY KEY, applied TEXT NOT NULL)"
            )
            done = {row[0] for row in db.execute("SELECT name FROM migrations")}
            for name, script in MIGRATIONS:
                if name in done:
                    continue
                for statement in statements(script):
                    db.execute(statement)
                db.execute("INSERT INTO migrations VALUES (?, ?)", (name, iso(utcnow())))

    def migrations(self) -> list[str]:
        return [row[0] for row in self._query("SELECT name FROM migrations ORDER BY name")]

    def data_version(self) -> int:
        """SQLite's data_version: it moves when another connection commits a change."""
        return int(self._query("PRAGMA data_version")[0][0])

    def checkpoint(self) -> None:
        """Copy the WAL into the database file now, on a short-lived connection of its own, so
        that a background thread can do it while this connection goes on writing."""
        file = self.open_file()  # absolute: the working directory may have changed
        if file is None or self.read_only is not None:
            return
        db = connect(file)
        try:
            db.execute("PRAGMA wal_checkpoint(PASSIVE)")
        finally:
            db.close()

    def set_autocheckpoint(self, pages: int) -> None:
        """Checkpoint on commit once the WAL holds `pages` pages (SQLite's default: 1000);
        0 leaves checkpoints to `checkpoint`."""
        self._query(f"PRAGMA wal_autocheckpoint={int(pages)}")

    def directory(self, *, fresh: bool = True) -> Directory:
        """Webhooks by slug and key hashes, read again when another connection or process
        committed anything since (SQLite's data_version moved) or this store changed them."""
        if fresh:
            version = self.data_version()
            if version != self._directory_version:
                self._directory, self._directory_version = None, version
        directory = self._directory
        if directory is None:
            hooks = self.webhooks()
            hashes = self._query("SELECT id, key_hash FROM service_accounts")
            directory = Directory({h.slug: h for h in hooks}, {r[0]: r[1] for r in hashes})
            self._directory = directory
        return directory

    def _changed(self) -> None:
        self._directory = None

    # Webhooks

    def insert_webhook(self, hook: Webhook) -> None:
        with self.transaction() as db:
            db.execute(
                f"INSERT INTO webhooks ({WEBHOOK_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                webhook_row(hook, iso, int),
            )
        self._changed()

    def save_webhook(self, hook: Webhook) -> None:
        with self.transaction() as db:
            db.execute(
                "UPDATE webhooks SET name=?, description=?, template=?, enabled=?, "
                "service_account_id=?, slug=?, created=?, updated=?, signature_preset=?, "
                "signature_secret=? WHERE id=?",
                (*webhook_row(hook, iso, int)[1:], hook.id),
            )
        self._changed()

    def delete_webhook(self, webhook_id: str) -> bool:
        with self.transaction() as db:
            gone = db.execute("DELETE FROM webhooks WHERE id=?", (webhook_id,)).rowcount > 0
        self._changed()
        return gone

    def webhook_by(self, column: str, value: str) -> Webhook | None:
        if column not in {"id", "slug", "name"}:  # the name goes into SQL: never user text
            raise ValueError(f"Webhooks cannot be looked up by {column!r}")
        rows = self._query(
            f"SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE {column}=? ORDER BY created LIMIT 1",
            (value,),
        )
        return webhook_from(rows[0]) if rows else None

    def webhooks_named(self, name: str) -> list[Webhook]:
        """Every webhook with this name, oldest first (names need not be unique)."""
        rows = self._query(
            f"SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE name=? ORDER BY created", (name,)
        )
        return [webhook_from(row) for row in rows]

    def webhooks(self) -> list[Webhook]:
        rows = self._query(f"SELECT {WEBHOOK_COLUMNS} FROM webhooks ORDER BY created, name")
        return [webhook_from(row) for row in rows]

    # Service accounts and settings

    def insert_service_account(self, account: ServiceAccount, key_hash: str) -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT INTO service_accounts VALUES (?,?,?,?)",
                (account.id, account.name, key_hash, iso(account.created)),
            )
        self._changed()

    def service_accounts(self) -> list[ServiceAccount]:
        rows = self._query("SELECT id, name, created FROM service_accounts ORDER BY created")
        return [ServiceAccount(id, name, as_time(created)) for id, name, created in rows]

    def service_account_key_hash(self, account_id: str) -> str | None:
        rows = self._query("SELECT key_hash FROM service_accounts WHERE id=?", (account_id,))
        return str(rows[0][0]) if rows else None

    def delete_service_account(self, account_id: str) -> list[str]:
        """Delete an account and, as Prefect does, its webhooks; returns their ids."""
        with self.transaction() as db:
            ids = [
                r[0]
                for r in db.execute(
                    "SELECT id FROM webhooks WHERE service_account_id=?", (account_id,)
                )
            ]
            db.execute("DELETE FROM webhooks WHERE service_account_id=?", (account_id,))
            gone = db.execute("DELETE FROM service_accounts WHERE id=?", (account_id,)).rowcount
        self._changed()
        if not gone:
            raise KeyError(account_id)
        return ids

    def setting(self, key: str, default: str | None = None) -> str | None:
        rows = self._query("SELECT value FROM settings WHERE key=?", (key,))
        return str(rows[0][0]) if rows else default

    def set_setting(self, key: str, value: str) -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT INTO settings VALUES (?, ?) "
                "ON CONFLICT(key) DO UPDATE SET value=excluded.value",
                (key, value),
            )

    def count_up(self, key: str) -> int:
        """Add one to the counter kept in setting `key` (0 when absent); returns its value
        before, read and written in one transaction, so two processes never get the same."""
        with self.transaction() as db:
            rows = db.execute("SELECT value FROM settings WHERE key=?", (key,)).fetchall()
            value = int(rows[0][0]) if rows else 0
            db.execute(
                "INSERT INTO settings VALUES (?, ?) "
                "ON CONFLICT(key) DO UPDATE SET value=excluded.value",
                (key, str(value + 1)),
            )
        return value

    def disable_webhooks_without_account(self, now: datetime) -> int:
        with self.transaction() as db:
            count = db.execute(
                "UPDATE webhooks SET enabled=0, updated=? "
                "WHERE service_account_id IS NULL AND enabled=1",
                (iso(now),),
            ).rowcount
        self._changed()
        return count

    # Requests and events

    def record(self, outcomes: Iterable[Outcome]) -> int:
        """Write requests (each outcome's own) and their outcomes, all in one transaction;
        returns how many."""
        requests, events = outcome_rows(list(outcomes), fast_iso, int)
        insert_kept(self._insert, requests, events)
        return len(requests)

    def _insert(self, requests: list[tuple[Any, ...]], events: list[tuple[Any, ...]]) -> None:
        with self.transaction() as db:
            db.executemany(
                f"INSERT INTO requests ({REQUEST_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                requests,
            )
            db.executemany(
                f"INSERT INTO events ({EVENT_INSERT_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                events,
            )

    def writer(self) -> SqliteWriter:
        return SqliteWriter(self)

    def feed_after(self, position: int, *, webhook_id: str | None = None, limit: int = 20) -> Feed:
        """What was stored after the event numbered `position`, by any process: the newest
        number, how many events and failures came, and the newest `limit` of them (oldest
        first). When nothing came, one look at the primary key answers it. SQLite numbers
        events in the order they commit, so nothing commits behind a position."""
        newest = int(self._query("SELECT coalesce(max(seq), 0) FROM events")[0][0])
        if newest <= position:
            return Feed(position, 0, 0, [])
        where = "seq > ? AND seq <= ?"
        params: list[object] = [position, newest]
        if webhook_id is not None:
            where, params = where + " AND webhook_id = ?", [*params, webhook_id]
        if position == 0:  # the first look counts a whole history: from its indexes, not its rows
            by = "events_by_webhook" if webhook_id is not None else "events_by_time"
            sql = f"SELECT count(*) FROM events INDEXED BY {by} WHERE {where}"
            count = self._query(sql, params)[0][0]
            sql = f"SELECT count(*) FROM events INDEXED BY events_failed_by_time WHERE {where}"
            failed = self._query(f"{sql} AND failed = 1", params)[0][0]
        else:
            count, failed = self._query(
                f"SELECT count(*), coalesce(sum(failed), 0) FROM events WHERE {where}", params
            )[0]
        rows = self._query(
            "SELECT received, event, json_extract(resource, '$.\"prefect.resource.id\"'), error "
            f"FROM events WHERE {where} ORDER BY seq DESC LIMIT ?",
            [*params, limit],
        )
        feed = [
            FeedRow(as_time(received), str(event), str(resource), error)
            for received, event, resource, error in reversed(rows)
        ]
        return Feed(newest, int(count), int(failed), feed)

    def event_rows(
        self, where: HistoryFilter = EVERYTHING, *, limit: int | None = None, **fields: Any
    ) -> tuple[list[str], list[tuple[Any, ...]]]:
        """Stored events, oldest first, as column names and raw rows. `where.webhook` is an id;
        the filter's fields may also be given as keywords (`failed=True`)."""
        sql, params = _event_query(replace(where, **fields), limit)
        return list(EVENT_COLUMNS), self._query(sql, params)

    def iter_event_rows(
        self, where: HistoryFilter = EVERYTHING, *, batch: int = 10_000
    ) -> tuple[list[str], Iterator[tuple[Any, ...]]]:
        """Like `event_rows`, but the rows are read `batch` at a time as they are iterated, on a
        connection of their own (one snapshot), so a million never sit in memory at once."""
        sql, params = _event_query(where, None)
        location = self.open_file()
        if not location:
            return list(EVENT_COLUMNS), iter(self._query(sql, params))
        return list(EVENT_COLUMNS), _read_lazily(location, self.read_only, sql, params, batch)

    def history_source(self) -> HistorySource:
        path = self.open_file()
        if path is None:  # in memory: read on the store's own connection, under its lock
            return HistorySource(None, (self._db, self._lock))
        return HistorySource(path, read_only=self.read_only, lend=self.lent)

    def request_records(
        self,
        where: HistoryFilter = EVERYTHING,
        *,
        ids: Sequence[str] | None = None,
        limit: int | None = None,
    ) -> list[StoredRequest]:
        """Stored requests, oldest first, with the status and error each got; `where.event` and
        `where.failed` keep the requests that produced such events."""
        clauses, params = self._request_conditions(where)
        if ids is not None:
            clauses.append(f"id IN ({','.join('?' * len(ids))})")
            params.extend(ids)
        sql = f"SELECT {REQUEST_COLUMNS} FROM requests{where_sql(clauses)} ORDER BY seq"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return [stored_request(row) for row in self._query(sql, params)]

    def request_batches(
        self,
        where: HistoryFilter = EVERYTHING,
        *,
        limit: int | None = None,
        batch: int = DEFAULT_BATCH,
    ) -> tuple[int, Iterator[list[StoredRequest]]]:
        """How many requests `request_records` would give (the `limit` most recent, when
        given), and those requests in batches, oldest first, each read when it is reached."""
        clauses, params = self._request_conditions(where)
        return request_pages(self._query, clauses, params, mark="?", limit=limit, batch=batch)

    def _request_conditions(self, where: HistoryFilter) -> tuple[list[str], list[Any]]:
        clauses, params = history_conditions(replace(where, event=None, failed=None), iso, int)
        if where.event is not None or where.failed is not None:
            produced, more = history_conditions(
                HistoryFilter(event=where.event, failed=where.failed), iso, int
            )
            clauses.append(f"id IN (SELECT request_id FROM events{where_sql(produced)})")
            params.extend(more)
        return clauses, params

    def has_request(self, request_id: str) -> bool:
        return bool(self._query("SELECT 1 FROM requests WHERE id=?", (request_id,)))

    def has_history(self, webhook_id: str) -> bool:
        """Whether any stored request was sent to this webhook id (deleted webhooks' included)."""
        sql = "SELECT 1 FROM requests WHERE webhook_id=? LIMIT 1"
        return bool(self._query(sql, (webhook_id,)))

    def count(self, table: str) -> int:
        return int(self._query(f"SELECT count(*) FROM {check_table(table)}")[0][0])

    # Forwarding

    def outbox(self) -> SqliteOutbox:
        return SqliteOutbox(self)

    # Copying

    def dump(
        self, table: str, *, after: int, limit: int, max_bytes: int | None = None
    ) -> tuple[int, list[dict[str, Any]]]:
        with self._lock:
            if max_bytes is not None and table in copying.ORDERED:
                sql, params = copying.size_query(table, after, limit, "?", _length)
                sizes = self._db.execute(sql, params).fetchall()
                limit = max(copying.rows_within((size for (size,) in sizes), max_bytes), 1)
            sql, params = copying.dump_query(table, after, limit, "?")
            cursor = self._db.execute(sql, params)
            names = [d[0] for d in cursor.description]
            rows = cursor.fetchall()
        return copying.dumped(table, after, names, rows)

    def prepare_load(self) -> None:
        with self.transaction() as db:
            db.execute(f"CREATE INDEX IF NOT EXISTS {copying.COPY_INDEX} ON events (id)")

    def finish_load(self) -> None:
        with self.transaction() as db:
            db.execute(f"DROP INDEX IF EXISTS {copying.COPY_INDEX}")

    def load(self, table: str, rows: Sequence[dict[str, Any]]) -> int:
        if not rows:
            return 0
        sql, values = copying.load_statement(table, rows, "?", iso, int)
        with self.transaction() as db:
            before = db.total_changes
            db.executemany(sql, values)
            new = db.total_changes - before
        self._changed()
        return new


Store = SqliteStore  # the name most of hooklab knew it by


def _length(column: str) -> str:
    return f"length({column})"  # a blob's bytes, a text's characters: near enough for a batch


def _event_query(where: HistoryFilter, limit: int | None) -> tuple[str, list[Any]]:
    clauses, params = history_conditions(where, iso, int)
    sql = f"SELECT {', '.join(EVENT_COLUMNS)} FROM events{where_sql(clauses)} ORDER BY seq"
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
    return sql, params


def _read_lazily(
    path: str, read_only: str | None, sql: str, params: Sequence[Any], batch: int
) -> Iterator[tuple[Any, ...]]:
    reader = connect(path, read_only=read_only)
    try:
        cursor = reader.execute(sql, params)
        while rows := cursor.fetchmany(batch):
            yield from rows
    finally:
        reader.close()
