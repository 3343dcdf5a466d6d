"""The PostgreSQL store: one database that several `hooklab serve` share, and notebooks read.

Same contract as the SQLite store. What differs is the shape of the work: every call is a
round trip, so the receiver never asks the database while it answers. It holds the directory
(webhooks by slug, key hashes) in memory, kept current by `LISTEN hooklab_changes`
(`pg_listen`), and writes through an asynchronous connection (`pg_writer`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime
from typing import Any

from hooklab.core.outcome import Outcome
from hooklab.core.webhooks import Webhook
from hooklab.store import copying
from hooklab.store.contract import (
    EVENT_COLUMNS,
    Directory,
    Feed,
    FeedRow,
    HistorySource,
    ServiceAccount,
    StoredRequest,
    StoreError,
    StoreUnavailable,
)
from hooklab.store.filters import EVERYTHING, HistoryFilter
from hooklab.store.pg_connect import (
    ANSWER_TIMEOUT,
    connect,
    location,
    migrate,
    require_psycopg,
    unavailable,
)
from hooklab.store.pg_outbox import lease_seconds
from hooklab.store.pg_writer import batches, pg_text
from hooklab.store.requestpages import DEFAULT_BATCH, request_pages
from hooklab.store.rows import (
    REQUEST_COLUMNS,
    WEBHOOK_COLUMNS,
    as_time,
    check_table,
    history_conditions,
    insert_kept,
    outcome_rows,
    stored_request,
    webhook_from,
    webhook_row,
    where_sql,
)


def _same(value: Any) -> Any:
    return value


class PostgresStore:
    """A hooklab store in a PostgreSQL database, named by its URL."""

    shared = True
    read_only: str | None = None  # a database that refuses writes says so when written to

    def __init__(self, url: str, *, listen: bool = True) -> None:
        self._psycopg = require_psycopg()
        lease_seconds()  # a bad $HOOKLAB_OUTBOX_LEASE stops here, not in a forwarding process
        self.url = url
        self.location = location(url)
        self._lock = threading.RLock()
        self._failure: tuple[float, StoreError] | None = None  # when the store last did not answer
        self._db = connect(url)
        self._listener = None
        try:
            migrate(self._db, self.location, url)
            self._db.answer_within = ANSWER_TIMEOUT  # type: ignore[attr-defined]  # after migrating
            if listen:
                from hooklab.store.pg_listen import Listener

                self._listener = Listener(url, self.location, self._reload_from_listener)
            self._directory = self._load_directory()
        except BaseException:
            self.close()
            raise

    def __repr__(self) -> str:
        return f"PostgresStore({self.location!r})"

    def close(self) -> None:
        if self._listener is not None:
            self._listener.close()
        with self._lock:
            self._db.close()

    # The connection

    def _connection(self) -> Any:
        if self._db.closed or self._db.broken:
            self._db.close()
            try:
                self._db = connect(self.url, answer_within=ANSWER_TIMEOUT)
            except StoreError as exc:
                raise self._failed(exc) from None
        return self._db

    @contextmanager
    def _turn(self) -> Iterator[None]:
        """The connection, one caller at a time. A caller that waited its turn while the store
        failed to answer fails the same way at once: each of a queue of callers (the
        management API's) would otherwise wait out a timeout of its own, one after another."""
        asked = time.monotonic()
        with self._lock:
            failure = self._failure
            if failure is not None and failure[0] >= asked:
                raise failure[1]
            yield

    def _failed(self, error: StoreError) -> StoreError:
        if isinstance(error, StoreUnavailable):
            self._failure = (time.monotonic(), error)
        return error

    @contextmanager
    def transaction(self) -> Iterator[Any]:
        with self._turn():
            try:
                db = self._connection()
                with db.transaction():
                    yield db
            except self._psycopg.OperationalError as exc:
                raise self._failed(unavailable(self.location, self.url, exc)) from None

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Rows of one statement. A connection lost since the last call (the server
        restarted) is made again once; a store that does not answer is `StoreUnavailable`."""
        with self._turn():
            for attempt in (1, 2):
                try:
                    return self._connection().execute(sql, params).fetchall()  # type: ignore[no-any-return]
                except self._psycopg.OperationalError as exc:
                    if attempt == 2 or not self._db.broken:
                        error = unavailable(self.location, self.url, exc)
                        raise self._failed(error) from None
            raise AssertionError("unreachable")

    def migrations(self) -> list[str]:
        return [row[0] for row in self._query("SELECT name FROM migrations ORDER BY name")]

    # The directory

    def directory(self, *, fresh: bool = True) -> Directory:
        """Held in memory; the listener swaps in a new one when another process changes
        anything, and this store's own changes load it at once."""
        return self._directory

    def _load_directory(self, db: Any = None) -> Directory:
        query = (db or self._connection()).execute
        hooks = [webhook_from(r) for r in query(f"SELECT {WEBHOOK_COLUMNS} FROM webhooks")]
        hashes = dict(query("SELECT id, key_hash FROM service_accounts").fetchall())
        return Directory({h.slug: h for h in hooks}, hashes)

    def _reload_from_listener(self, db: Any) -> None:
        self._directory = self._load_directory(db)

    def _changed(self) -> None:
        with self._lock:
            self._directory = self._load_directory()

    # Webhooks

    def insert_webhook(self, hook: Webhook) -> None:
        with self.transaction() as db:
            db.execute(
                f"INSERT INTO webhooks ({WEBHOOK_COLUMNS}) VALUES ({', '.join(['%s'] * 11)})",
                webhook_row(hook, _same, bool),
            )
        self._changed()

    def save_webhook(self, hook: Webhook) -> None:
        with self.transaction() as db:
            db.execute(
                "UPDATE webhooks SET name=%s, description=%s, template=%s, enabled=%s, "
                "service_account_id=%s, slug=%s, created=%s, updated=%s, signature_preset=%s, "
                "signature_secret=%s WHERE id=%s",
                (*webhook_row(hook, _same, bool)[1:], hook.id),
            )
        self._changed()

    def delete_webhook(self, webhook_id: str) -> bool:
        with self.transaction() as db:
            gone = db.execute("DELETE FROM webhooks WHERE id=%s", (webhook_id,)).rowcount > 0
        self._changed()
        return bool(gone)

    def webhook_by(self, column: str, value: str) -> Webhook | None:
        if column not in {"id", "slug", "name"}:  # the name goes into SQL: never user text
            raise ValueError(f"Webhooks cannot be looked up by {column!r}")
        rows = self._query(
            f"SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE {column}=%s ORDER BY created LIMIT 1",
            (value,),
        )
        return webhook_from(rows[0]) if rows else None

    def webhooks_named(self, name: str) -> list[Webhook]:
        rows = self._query(
            f"SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE name=%s ORDER BY created", (name,)
        )
        return [webhook_from(row) for row in rows]

    def webhooks(self) -> list[Webhook]:
        rows = self._query(f"SELECT {WEBHOOK_COLUMNS} FROM webhooks ORDER BY created, name")
        return [webhook_from(row) for row in rows]

    # Service accounts and settings

    def insert_service_account(self, account: ServiceAccount, key_hash: str) -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT INTO service_accounts VALUES (%s,%s,%s,%s)",
                (account.id, account.name, key_hash, account.created),
            )
        self._changed()

    def service_accounts(self) -> list[ServiceAccount]:
        rows = self._query("SELECT id, name, created FROM service_accounts ORDER BY created")
        return [ServiceAccount(id, name, as_time(created)) for id, name, created in rows]

    def service_account_key_hash(self, account_id: str) -> str | None:
        rows = self._query("SELECT key_hash FROM service_accounts WHERE id=%s", (account_id,))
        return str(rows[0][0]) if rows else None

    def delete_service_account(self, account_id: str) -> list[str]:
        with self.transaction() as db:
            ids = [
                r[0]
                for r in db.execute(
                    "DELETE FROM webhooks WHERE service_account_id=%s RETURNING id", (account_id,)
                )
            ]
            gone = db.execute("DELETE FROM service_accounts WHERE id=%s", (account_id,)).rowcount
        self._changed()
        if not gone:
            raise KeyError(account_id)
        return ids

    def setting(self, key: str, default: str | None = None) -> str | None:
        rows = self._query("SELECT value FROM settings WHERE key=%s", (key,))
        return str(rows[0][0]) if rows else default

    def set_setting(self, key: str, value: str) -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT INTO settings VALUES (%s, %s) "
                "ON CONFLICT (key) DO UPDATE SET value=excluded.value",
                (key, value),
            )

    def count_up(self, key: str) -> int:
        with self.transaction() as db:
            row = db.execute(
                "INSERT INTO settings VALUES (%s, '1') ON CONFLICT (key) DO UPDATE "
                "SET value = (settings.value::bigint + 1)::text RETURNING value::bigint - 1",
                (key,),
            ).fetchone()
        return int(row[0])

    def disable_webhooks_without_account(self, now: datetime) -> int:
        with self.transaction() as db:
            count = db.execute(
                "UPDATE webhooks SET enabled=false, updated=%s "
                "WHERE service_account_id IS NULL AND enabled",
                (now,),
            ).rowcount
        self._changed()
        return int(count)

    # Requests and events

    def record(self, outcomes: Iterable[Outcome]) -> int:
        requests, events = outcome_rows(list(outcomes), _same, bool)
        insert_kept(self._insert, requests, events)
        return len(requests)

    def _insert(self, requests: list[tuple[Any, ...]], events: list[tuple[Any, ...]]) -> None:
        with self.transaction() as db, self._psycopg.RawCursor(db) as cursor:
            for sql, params in batches(requests, events):
                cursor.execute(sql, params)

    def writer(self) -> Any:
        from hooklab.store.pg_writer import PostgresWriter

        return PostgresWriter(self.url, self.location)

    def feed_after(self, position: int, *, webhook_id: str | None = None, limit: int = 20) -> Feed:
        """Events whose transactions ended after `position`, a transaction horizon: every
        transaction below it has ended, so an event a slower replica commits late is still
        seen by the next look, never skipped."""
        horizon = int(self._query("SELECT pg_snapshot_xmin(pg_current_snapshot())::text")[0][0])
        if horizon <= position:
            return Feed(position, 0, 0, [])
        where = "xid >= %s::text::xid8 AND xid < %s::text::xid8"
        params: list[object] = [str(position), str(horizon)]
        if webhook_id is not None:
            where, params = where + " AND webhook_id = %s", [*params, webhook_id]
        count, failed = self._query(
            f"SELECT count(*), count(*) FILTER (WHERE failed) FROM events WHERE {where}", params
        )[0]
        rows = self._query(
            "SELECT received, event, resource::json ->> 'prefect.resource.id', error "
            f"FROM events WHERE {where} ORDER BY seq DESC LIMIT %s",
            [*params, limit],
        )
        feed = [
            FeedRow(as_time(received), str(event), str(resource), error)
            for received, event, resource, error in reversed(rows)
        ]
        return Feed(horizon, int(count), int(failed), feed)

    def event_rows(
        self, where: HistoryFilter = EVERYTHING, *, limit: int | None = None, **fields: Any
    ) -> tuple[list[str], list[tuple[Any, ...]]]:
        sql, params = _event_query(replace(where, **fields), limit)
        return list(EVENT_COLUMNS), [_sqlite_shaped(row) for row in self._query(sql, params)]

    def iter_event_rows(
        self, where: HistoryFilter = EVERYTHING, *, batch: int = 10_000
    ) -> tuple[list[str], Iterator[tuple[Any, ...]]]:
        sql, params = _event_query(where, None)
        return list(EVENT_COLUMNS), self._read_lazily(sql, params, batch)

    def _read_lazily(
        self, sql: str, params: Sequence[Any], batch: int
    ) -> Iterator[tuple[Any, ...]]:
        reader = connect(self.url, autocommit=False)
        try:
            with reader.cursor(name="hooklab_history") as cursor:  # server-side: batches
                cursor.itersize = batch
                cursor.execute(sql, params)
                for row in cursor:
                    yield _sqlite_shaped(row)
        finally:
            reader.close()

    def history_source(self) -> HistorySource:
        return HistorySource(self.url)

    def request_records(
        self,
        where: HistoryFilter = EVERYTHING,
        *,
        ids: Sequence[str] | None = None,
        limit: int | None = None,
    ) -> list[StoredRequest]:
        clauses, params = self._request_conditions(where)
        if ids is not None:
            clauses.append("id = ANY(%s)")
            params.append(list(ids))
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
        clauses, params = self._request_conditions(where)
        return request_pages(self._query, clauses, params, mark="%s", limit=limit, batch=batch)

    def _request_conditions(self, where: HistoryFilter) -> tuple[list[str], list[Any]]:
        plain = replace(where, event=None, failed=None)
        clauses, params = history_conditions(plain, _same, bool, "%s")
        if where.event is not None or where.failed is not None:
            produced, more = history_conditions(
                HistoryFilter(event=where.event, failed=where.failed), _same, bool, "%s"
            )
            clauses.append(f"id IN (SELECT request_id FROM events{where_sql(produced)})")
            params.extend(more)
        return clauses, params

    def has_request(self, request_id: str) -> bool:
        return bool(self._query("SELECT 1 FROM requests WHERE id=%s", (request_id,)))

    def has_history(self, webhook_id: str) -> bool:
        return bool(
            self._query("SELECT 1 FROM requests WHERE webhook_id=%s LIMIT 1", (webhook_id,))
        )

    def count(self, table: str) -> int:
        return int(self._query(f"SELECT count(*) FROM {check_table(table)}")[0][0])

    # Forwarding

    def outbox(self) -> Any:
        from hooklab.store.pg_outbox import PostgresOutbox

        return PostgresOutbox(self.url, self.location)

    # Copying

    def dump(
        self, table: str, *, after: int, limit: int, max_bytes: int | None = None
    ) -> tuple[int, list[dict[str, Any]]]:
        with self._lock:
            if max_bytes is not None and table in copying.ORDERED:
                sql, params = copying.size_query(table, after, limit, "%s", _octets)
                sizes = self._connection().execute(sql, params).fetchall()
                limit = max(copying.rows_within((size for (size,) in sizes), max_bytes), 1)
            sql, params = copying.dump_query(table, after, limit, "%s")
            # Binary: a body comes as its bytes, not as hex text twice its size.
            with self._connection().cursor(binary=True) as cursor:
                from psycopg.types.string import TextBinaryLoader

                cursor.adapters.register_loader("json", TextBinaryLoader)  # the text stored
                cursor.execute(sql, params)
                names = [d.name for d in cursor.description]
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
        sql, values = copying.load_statement(table, rows, "%s", _same, bool)
        new = 0
        with self.transaction() as db, db.cursor() as cursor:
            for row in values:  # rowcount per row: which were new
                cursor.execute(sql, [pg_text(value) for value in row])
                new += max(cursor.rowcount, 0)
        self._changed()
        return new


def _octets(column: str) -> str:
    # A bytea's length comes from its header, without reading it.
    return f"octet_length({column}::text)" if column in copying.JSON else f"octet_length({column})"


def _event_query(where: HistoryFilter, limit: int | None) -> tuple[str, list[Any]]:
    clauses, params = history_conditions(where, _same, bool, "%s")
    sql = f"SELECT {', '.join(EVENT_COLUMNS)} FROM events{where_sql(clauses)} ORDER BY seq"
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
    return sql, params


def _sqlite_shaped(row: Sequence[Any]) -> tuple[Any, ...]:
    """An event row with its times as ISO text and `failed` as 0 or 1, as the frame builders
    take SQLite's."""
    from hooklab.store.rows import fast_iso

    values = list(row)
    values[1], values[2] = fast_iso(as_time(values[1])), fast_iso(as_time(values[2]))
    values[10] = int(values[10])
    return tuple(values)
