"""The PostgreSQL schema: the same named migrations as SQLite's, in PostgreSQL's own types.

Each script runs whole in one transaction, under an advisory lock, so replicas starting
together apply it once, and a script that fails (no rights, say) leaves no half-made schema.
Differences from SQLite's, each for several processes on one database:
- times are `timestamptz`, flags `boolean`, bodies `bytea`; JSON is `json`, which keeps the
  text as stored (key order, spacing), as SQLite's TEXT does;
- each event records the transaction that stored it (`xid`), so a live feed never misses an
  event that a slower replica commits after a newer one;
- the forwarding outbox is a table of its own, filled by a trigger in the transaction that
  stores the events, and claimed by replicas with `FOR UPDATE SKIP LOCKED` and a lease;
- a change to webhooks, service accounts or settings notifies `hooklab_changes`, so every
  replica sees it at once.
"""

from __future__ import annotations

LOCK = 7_212_031_944  # pg_advisory_xact_lock key for migrations: "hooklab" in spirit

MIGRATIONS: list[tuple[str, str]] = [
    (
        "0001_initial",
        """
        CREATE TABLE service_accounts (
            id text PRIMARY KEY,
            name text NOT NULL,
            key_hash text NOT NULL UNIQUE,
            created timestamptz NOT NULL
        );
        CREATE TABLE webhooks (
            id text PRIMARY KEY,
            name text NOT NULL,
            description text NOT NULL DEFAULT '',
            template text NOT NULL,
            enabled boolean NOT NULL DEFAULT true,
            service_account_id text REFERENCES service_accounts(id),
            slug text NOT NULL UNIQUE,
            created timestamptz NOT NULL,
            updated timestamptz NOT NULL,
            signature_preset text,
            signature_secret text
        );
        CREATE TABLE settings (
            key text PRIMARY KEY,
            value text NOT NULL
        );
        CREATE TABLE requests (
            seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            id text NOT NULL UNIQUE,
            webhook_id text,
            method text NOT NULL,
            path text NOT NULL,
            query text NOT NULL,
            headers json NOT NULL,
            body bytea NOT NULL,
            received timestamptz NOT NULL,
            client text NOT NULL,
            status integer NOT NULL,
            error text,
            rendered text
        );
        CREATE INDEX requests_by_webhook ON requests (webhook_id, received);
        CREATE TABLE events (
            seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            id text NOT NULL,
            request_id text,
            webhook_id text,
            event text NOT NULL,
            occurred timestamptz NOT NULL,
            received timestamptz NOT NULL,
            resource json NOT NULL,
            related json NOT NULL,
            payload json NOT NULL,
            follows text,
            failed boolean NOT NULL,
            error text,
            xid xid8 NOT NULL DEFAULT pg_current_xact_id()
        );
        CREATE INDEX events_by_webhook ON events (webhook_id, received);
        CREATE INDEX events_by_xid ON events (xid);
        CREATE FUNCTION hooklab_notify() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('hooklab_changes', TG_TABLE_NAME);
            RETURN NULL;
        END $$;
        CREATE TRIGGER webhooks_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
            ON webhooks FOR EACH STATEMENT EXECUTE FUNCTION hooklab_notify();
        CREATE TRIGGER service_accounts_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
            ON service_accounts FOR EACH STATEMENT EXECUTE FUNCTION hooklab_notify();
        CREATE TRIGGER settings_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
            ON settings FOR EACH STATEMENT EXECUTE FUNCTION hooklab_notify();
        """,
    ),
    # SQLite's second migration dropped indexes PostgreSQL never made.
    ("0002_fewer_indexes", "SELECT 1"),
    (
        "0003_forwarding",
        """
        CREATE TABLE forward_destinations (
            url text PRIMARY KEY,
            delivered bigint NOT NULL DEFAULT 0,
            rejected bigint NOT NULL DEFAULT 0,
            last_delivered timestamptz,
            last_error text,
            last_error_at timestamptz,
            created timestamptz NOT NULL
        );
        CREATE TABLE outbox (
            url text NOT NULL REFERENCES forward_destinations(url) ON DELETE CASCADE,
            seq bigint NOT NULL,
            claimed_by text,
            claimed_until timestamptz,
            PRIMARY KEY (url, seq)
        );
        CREATE FUNCTION hooklab_enqueue() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            INSERT INTO outbox (url, seq)
                SELECT d.url, n.seq FROM stored n CROSS JOIN forward_destinations d;
            RETURN NULL;
        END $$;
        CREATE TRIGGER events_enqueued AFTER INSERT ON events
            REFERENCING NEW TABLE AS stored
            FOR EACH STATEMENT EXECUTE FUNCTION hooklab_enqueue();
        """,
    ),
    (
        # The history's time windows read from these (hooklab.store.readout), as on SQLite.
        "0004_history_windows",
        """
        CREATE INDEX IF NOT EXISTS events_by_time ON events (received);
        CREATE INDEX IF NOT EXISTS requests_by_time ON requests (received);
        CREATE INDEX IF NOT EXISTS events_failed_by_time ON events (received) WHERE failed;
        """,
    ),
]

# Not a migration (SQLite has nothing like it): large values (request bodies, rendered text,
# headers, payloads) are compressed with lz4 rather than PostgreSQL's default pglz, where the
# server has lz4 (Debian's and most builds do). It takes a third of the server's CPU to store a
# 7 KB JSON delivery, and stores it as small. Checked at every start, altered once; a role that
# does not own the tables (they were made by another) leaves them as they are.
STORAGE = """
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_settings
               WHERE name = 'default_toast_compression' AND 'lz4' = ANY(enumvals))
       AND EXISTS (SELECT 1 FROM pg_attribute
                   WHERE attrelid = 'requests'::regclass AND attname = 'body'
                   AND attcompression <> 'l')
    THEN
        BEGIN
            ALTER TABLE requests ALTER COLUMN body SET COMPRESSION lz4,
                ALTER COLUMN rendered SET COMPRESSION lz4,
                ALTER COLUMN headers SET COMPRESSION lz4;
            ALTER TABLE events ALTER COLUMN payload SET COMPRESSION lz4;
        EXCEPTION WHEN insufficient_privilege THEN
            NULL;
        END;
    END IF;
END $$;
"""
