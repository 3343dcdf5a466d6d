"""The SQLite store: the connection, the migrations applied, and every query hooklab runs."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from hooklab.core.events import ReceivedEvent
from hooklab.core.outcome import Outcome
from hooklab.core.request import HookRequest
from hooklab.core.times import iso, parse_iso, utcnow
from hooklab.core.webhooks import Webhook
from hooklab.store.connection import Connected
from hooklab.store.filters import EVERYTHING, HistoryFilter
from hooklab.store.migrations import MIGRATIONS, statements
from hooklab.store.sqlitefile import connect, open_database, require_migrated
from hooklab.store.values import stored_json, stored_json_ascii

WEBHOOK_COLUMNS = (
    "id, name, description, template, enabled, service_account_id, slug, created, updated, "
    "signature_preset, signature_secret"
)


@dataclass(frozen=True)
class ServiceAccount:
    id: str
    name: str
    created: datetime

    def to_api(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "created": iso(self.created)}


@dataclass(frozen=True)
class FeedRow:
    """One event as a live feed shows it."""

    received: datetime
    event: str
    resource_id: str
    error: str | None


class Store(Connected):
    """One SQLite file in WAL mode. Safe to share between the event loop and a writer thread."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self._lock = threading.RLock()
        # Made private (0600, and a home's folder 0700); read-only, with the reason in
        # `read_only`, when it cannot be written.
        self._db, self.read_only = open_database(self.path)
        self._db.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode: a committed transaction survives the process being killed.
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._db.execute("PRAGMA busy_timeout=5000")
        self._migrate()

    def close(self) -> None:
        with self._lock:
            self._db.close()

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

    def data_version(self) -> int:
        """SQLite's data_version: it moves when another connection commits a change."""
        return int(self._query("PRAGMA data_version")[0][0])

    def checkpoint(self) -> None:
        """Copy the WAL into the database file now, on a short-lived connection of its own, so
        that a background thread can do it while this connection goes on writing."""
        if self.path == ":memory:" or self.read_only is not None:
            return
        db = sqlite3.connect(self.path, isolation_level=None)
        try:
            db.execute("PRAGMA wal_checkpoint(PASSIVE)")
        finally:
            db.close()

    def set_autocheckpoint(self, pages: int) -> None:
        """Checkpoint on commit once the WAL holds `pages` pages (SQLite's default: 1000);
        0 leaves checkpoints to `checkpoint`."""
        self._query(f"PRAGMA wal_autocheckpoint={int(pages)}")

    def migrations(self) -> list[str]:
        return [row[0] for row in self._query("SELECT name FROM migrations ORDER BY name")]

    # Webhooks

    def insert_webhook(self, hook: Webhook) -> None:
        with self.transaction() as db:
            db.execute(
                f"INSERT INTO webhooks ({WEBHOOK_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                _webhook_row(hook),
            )

    def save_webhook(self, hook: Webhook) -> None:
        with self.transaction() as db:
            db.execute(
                "UPDATE webhooks SET name=?, description=?, template=?, enabled=?, "
                "service_account_id=?, slug=?, created=?, updated=?, signature_preset=?, "
                "signature_secret=? WHERE id=?",
                (*_webhook_row(hook)[1:], hook.id),
            )

    def delete_webhook(self, webhook_id: str) -> bool:
        with self.transaction() as db:
            return db.execute("DELETE FROM webhooks WHERE id=?", (webhook_id,)).rowcount > 0

    def webhook_by(self, column: str, value: str) -> Webhook | None:
        if column not in {"id", "slug", "name"}:  # the name goes into SQL: never user text
            raise ValueError(f"Webhooks cannot be looked up by {column!r}")
        rows = self._query(
            f"SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE {column}=? ORDER BY created LIMIT 1",
            (value,),
        )
        return _webhook(rows[0]) if rows else None

    def webhooks_named(self, name: str) -> list[Webhook]:
        """Every webhook with this name, oldest first (names need not be unique)."""
        rows = self._query(
            f"SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE name=? ORDER BY created", (name,)
        )
        return [_webhook(row) for row in rows]

    def webhooks(self) -> list[Webhook]:
        rows = self._query(f"SELECT {WEBHOOK_COLUMNS} FROM webhooks ORDER BY created, name")
        return [_webhook(row) for row in rows]

    # Service accounts and settings

    def insert_service_account(self, account: ServiceAccount, key_hash: str) -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT INTO service_accounts VALUES (?,?,?,?)",
                (account.id, account.name, key_hash, iso(account.created)),
            )

    def service_accounts(self) -> list[ServiceAccount]:
        rows = self._query("SELECT id, name, created FROM service_accounts ORDER BY created")
        return [ServiceAccount(r[0], r[1], parse_iso(r[2])) for r in rows]

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
            return db.execute(
                "UPDATE webhooks SET enabled=0, updated=? "
                "WHERE service_account_id IS NULL AND enabled=1",
                (iso(now),),
            ).rowcount

    # Requests and events

    def record(self, outcomes: Iterable[Outcome]) -> int:
        """Write requests (each outcome's own) and their outcomes, all in one transaction;
        returns how many."""
        request_rows: list[tuple[Any, ...]] = []
        event_rows: list[tuple[Any, ...]] = []
        for outcome in outcomes:
            request = outcome.request
            if request is None:
                raise ValueError("an outcome without its request cannot be stored")
            row = _request_row(request, outcome)
            request_rows.append(row)
            event_rows.extend(_event_row(request, row[7], outcome, e) for e in outcome.events)
        with self.transaction() as db:
            db.executemany(
                "INSERT INTO requests (id, webhook_id, method, path, query, headers, body, "
                "received, client, status, error, rendered) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                request_rows,
            )
            db.executemany(
                "INSERT INTO events (id, request_id, webhook_id, event, occurred, received, "
                "resource, related, payload, follows, failed, error) "
                "VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                event_rows,
            )
        return len(request_rows)

    def events_after(
        self, seq: int, *, webhook_id: str | None = None, limit: int = 20
    ) -> tuple[int, int, int, list[FeedRow]]:
        """What was stored after the event numbered `seq`, by any process, for a live feed:
        the newest number, how many events and failures came, and the newest `limit` of them
        (oldest first). When nothing came, one look at the primary key answers it."""
        newest = int(self._query("SELECT coalesce(max(seq), 0) FROM events")[0][0])
        if newest <= seq:
            return seq, 0, 0, []
        where = "seq > ? AND seq <= ?"
        params: list[object] = [seq, newest]
        if webhook_id is not None:
            where, params = where + " AND webhook_id = ?", [*params, webhook_id]
        count, failed = self._query(
            f"SELECT count(*), coalesce(sum(failed), 0) FROM events WHERE {where}", params
        )[0]
        rows = self._query(
            "SELECT received, event, json_extract(resource, '$.\"prefect.resource.id\"'), error "
            f"FROM events WHERE {where} ORDER BY seq DESC LIMIT ?",
            [*params, limit],
        )
        feed = [FeedRow(parse_iso(r[0]), str(r[1]), str(r[2]), r[3]) for r in reversed(rows)]
        return newest, int(count), int(failed), feed

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
        # The file this connection has open, by its absolute path: the working directory may
        # have changed since (`%cd` in a notebook). None for an in-memory database, which
        # another connection would not see.
        location = self._query("PRAGMA database_list")[0][2]
        if not location:
            return list(EVENT_COLUMNS), iter(self._query(sql, params))
        return list(EVENT_COLUMNS), _read_lazily(location, self.read_only, sql, params, batch)

    def request_records(
        self,
        where: HistoryFilter = EVERYTHING,
        *,
        ids: Sequence[str] | None = None,
        limit: int | None = None,
    ) -> list[StoredRequest]:
        """Stored requests, oldest first, with the status and error each got; `where.event` and
        `where.failed` keep the requests that produced such events."""
        clauses, params = event_filters(replace(where, event=None, failed=None))
        if where.event is not None or where.failed is not None:
            produced, more = event_filters(HistoryFilter(event=where.event, failed=where.failed))
            clauses.append(f"id IN (SELECT request_id FROM events{_where(produced)})")
            params.extend(more)
        if ids is not None:
            clauses.append(f"id IN ({','.join('?' * len(ids))})")
            params.extend(ids)
        where_sql = _where(clauses)
        sql = (
            "SELECT id, webhook_id, method, path, query, headers, body, received, client, status, "
            f"error, rendered FROM requests{where_sql} ORDER BY seq"
        )
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return [_stored_request(row) for row in self._query(sql, params)]

    def has_request(self, request_id: str) -> bool:
        return bool(self._query("SELECT 1 FROM requests WHERE id=?", (request_id,)))

    def has_history(self, webhook_id: str) -> bool:
        """Whether any stored request was sent to this webhook id (deleted webhooks' included)."""
        sql = "SELECT 1 FROM requests WHERE webhook_id=? LIMIT 1"
        return bool(self._query(sql, (webhook_id,)))

    def count(self, table: str) -> int:
        if table not in {"requests", "events", "webhooks", "service_accounts"}:
            raise ValueError(f"No table {table!r} to count")
        return int(self._query(f"SELECT count(*) FROM {table}")[0][0])


EVENT_COLUMNS = (
    "id", "occurred", "received", "event", "resource", "related", "payload",
    "follows", "webhook_id", "request_id", "failed", "error",
)  # fmt: skip


def _event_query(where: HistoryFilter, limit: int | None) -> tuple[str, list[Any]]:
    clauses, params = event_filters(where)
    sql = f"SELECT {', '.join(EVENT_COLUMNS)} FROM events{_where(clauses)} ORDER BY seq"
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


@dataclass(frozen=True)
class StoredRequest:
    """A stored request with the status and error it got."""

    request: HookRequest
    webhook_id: str | None
    status: int
    error: str | None
    rendered: str | None


def event_filters(where: HistoryFilter) -> tuple[list[str], list[Any]]:
    """SQL conditions for a filter, on the columns requests and events share (the event name
    and `failed` are the events table's)."""
    clauses: list[str] = []
    params: list[Any] = []
    for value, clause in (
        (where.webhook, "webhook_id=?"),
        (where.event, "event=?"),
        (None if where.since is None else iso(where.since), "received>=?"),
        (None if where.until is None else iso(where.until), "received<?"),
        (None if where.failed is None else int(where.failed), "failed=?"),
    ):
        if value is not None:
            clauses.append(clause)
            params.append(value)
    return clauses, params


def _where(clauses: list[str]) -> str:
    return f" WHERE {' AND '.join(clauses)}" if clauses else ""


def _webhook_row(hook: Webhook) -> tuple[Any, ...]:
    return (
        hook.id,
        hook.name,
        hook.description,
        hook.template,
        int(hook.enabled),
        hook.service_account_id,
        hook.slug,
        iso(hook.created),
        iso(hook.updated),
        hook.signature_preset,
        hook.signature_secret,
    )


def _webhook(row: Sequence[Any]) -> Webhook:
    return Webhook(
        id=row[0],
        name=row[1],
        description=row[2],
        template=row[3],
        enabled=bool(row[4]),
        service_account_id=row[5],
        slug=row[6],
        created=parse_iso(row[7]),
        updated=parse_iso(row[8]),
        signature_preset=row[9],
        signature_secret=row[10],
    )


def _request_row(request: HookRequest, outcome: Outcome) -> tuple[Any, ...]:
    clean = request.without_secrets()
    return (
        clean.id,
        outcome.webhook_id,
        clean.method,
        clean.path,
        clean.query,
        stored_json_ascii(clean.headers),
        clean.body,
        _iso(clean.received),
        clean.client,
        outcome.status,
        outcome.error,
        outcome.rendered,
    )


def _stored_request(row: Sequence[Any]) -> StoredRequest:
    request = HookRequest(
        id=row[0],
        method=row[2],
        path=row[3],
        query=row[4],
        headers=tuple((str(k), str(v)) for k, v in json.loads(row[5])),
        body=bytes(row[6]),
        received=parse_iso(row[7]),
        client=row[8],
    )
    return StoredRequest(request, row[1], int(row[9]), row[10], row[11])


def _iso(moment: datetime) -> str:
    """`iso`, quicker for the UTC times nearly every request and event carries."""
    if moment.tzinfo is timezone.utc:
        return moment.isoformat(timespec="microseconds")
    return iso(moment)


def _event_row(
    request: HookRequest, received: str, outcome: Outcome, event: ReceivedEvent
) -> tuple[Any, ...]:
    """An event's row; `received` is the request's time as its row has it (an event received
    with its request, as every event is, takes that text instead of writing it again)."""
    failed = outcome.failed
    return (
        str(event.id),
        request.id,
        outcome.webhook_id,
        event.event,
        _iso(event.occurred),
        received if event.received == request.received else _iso(event.received),
        stored_json(event.resource.root),
        stored_json([r.root for r in event.related]),
        stored_json(event.payload),
        str(event.follows) if event.follows else None,
        int(failed),
        outcome.error if failed else None,
    )
