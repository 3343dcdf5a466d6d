"""The SQLite schema as named migrations, applied in order and recorded in the file."""

from __future__ import annotations

from collections.abc import Iterator

# Append only: a migration that has run in someone's file must never change.
MIGRATIONS: list[tuple[str, str]] = [
    (
        "0001_initial",
        """
        CREATE TABLE service_accounts (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            key_hash TEXT NOT NULL UNIQUE,
            created TEXT NOT NULL
        );
        CREATE TABLE webhooks (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            description TEXT NOT NULL DEFAULT '',
            template TEXT NOT NULL,
            enabled INTEGER NOT NULL DEFAULT 1,
            service_account_id TEXT REFERENCES service_accounts(id),
            slug TEXT NOT NULL UNIQUE,
            created TEXT NOT NULL,
            updated TEXT NOT NULL,
            signature_preset TEXT,
            signature_secret TEXT
        );
        CREATE TABLE settings (
            key TEXT PRIMARY KEY,
            value TEXT NOT NULL
        );
        -- Requests keep the webhook's id, not a foreign key: history outlives a deleted webhook.
        CREATE TABLE requests (
            seq INTEGER PRIMARY KEY,
            id TEXT NOT NULL UNIQUE,
            webhook_id TEXT,
            method TEXT NOT NULL,
            path TEXT NOT NULL,
            query TEXT NOT NULL,
            headers TEXT NOT NULL,
            body BLOB NOT NULL,
            received TEXT NOT NULL,
            client TEXT NOT NULL,
            status INTEGER NOT NULL,
            error TEXT,
            rendered TEXT
        );
        CREATE INDEX requests_by_webhook ON requests (webhook_id, received);
        CREATE INDEX requests_by_time ON requests (received);
        CREATE TABLE events (
            seq INTEGER PRIMARY KEY,
            id TEXT NOT NULL,
            request_id TEXT,
            webhook_id TEXT,
            event TEXT NOT NULL,
            occurred TEXT NOT NULL,
            received TEXT NOT NULL,
            resource TEXT NOT NULL,
            related TEXT NOT NULL,
            payload TEXT NOT NULL,
            follows TEXT,
            failed INTEGER NOT NULL,
            error TEXT
        );
        CREATE INDEX events_by_webhook ON events (webhook_id, received);
        CREATE INDEX events_by_name ON events (event, received);
        CREATE INDEX events_by_time ON events (received);
        CREATE INDEX events_by_request ON events (request_id);
        """,
    ),
    (
        # Every index is written by every request the receiver stores, and these four were
        # worth about 11 µs of its ~265 µs per request. No query looks events up by request;
        # filters by time or event name scan in `seq` order, as the results are read anyway.
        # Kept: the request ids (unique) and the two by webhook, the filter people use most.
        "0002_fewer_indexes",
        """
        DROP INDEX IF EXISTS events_by_request;
        DROP INDEX IF EXISTS events_by_name;
        DROP INDEX IF EXISTS events_by_time;
        DROP INDEX IF EXISTS requests_by_time;
        """,
    ),
    (
        # The forwarding outbox (SPEC 11). The events table is the queue: an event is pending
        # for a destination while its seq is above the destination's `after_seq`, so it is
        # enqueued by the very transaction that stores it, at no cost to the receiver. SQLite
        # hands out seq in commit order (one writer at a time), so nothing commits behind the
        # mark. Credentials are never stored: only the URL.
        "0003_forwarding",
        """
        CREATE TABLE forward_destinations (
            url TEXT PRIMARY KEY,
            after_seq INTEGER NOT NULL,
            delivered INTEGER NOT NULL DEFAULT 0,
            rejected INTEGER NOT NULL DEFAULT 0,
            last_delivered TEXT,
            last_error TEXT,
            last_error_at TEXT,
            created TEXT NOT NULL
        );
        """,
    ),
    (
        # Reading a window of the history (`--since 1h`) reads the window, not the whole
        # history: the reader picks row numbers from these indexes (hooklab.store.readout).
        # Each costs the receiver one more index entry a request; the failures' index holds
        # failures only, so stored events that did not fail never write to it.
        "0004_history_windows",
        """
        CREATE INDEX IF NOT EXISTS events_by_time ON events (received);
        CREATE INDEX IF NOT EXISTS requests_by_time ON requests (received);
        CREATE INDEX IF NOT EXISTS events_failed_by_time ON events (received) WHERE failed = 1;
        """,
    ),
]


def statements(script: str) -> Iterator[str]:
    """The statements of a script, `--` comment lines dropped."""
    for statement in script.split(";"):
        lines = [ln for ln in statement.splitlines() if not ln.strip().startswith("--")]
        text = "\n".join(lines).strip()
        if text:
            yield text
