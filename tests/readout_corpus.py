"""A store of the real GitHub corpus for the readout's differential tests: every delivery as
JSON and as a form, failures, a deleted webhook's history, repeated headers, a body that is not
UTF-8."""

from __future__ import annotations

import itertools
import json
import sqlite3
import uuid
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import urlencode

from corpus_support import github_deliveries

import hooklab
from hooklab import HookRequest
from hooklab.core.examples import DYNAMIC_TEMPLATE

START = datetime(2025, 3, 1, 9, 0, tzinfo=timezone.utc)
# The whole delivery as the payload; labels and roles that some deliveries have and others lack.
GITHUB = """{
  "event": "github.{{ headers['X-GitHub-Event'] }}{{ ('.' ~ body.action) if body.action }}",
  "resource": {
    "prefect.resource.id": {{ ("github.repository." ~ (body.repository.full_name
        or body.organization.login or "none"))|tojson }},
    {% if body.repository %}"prefect.resource.name": {{ body.repository.name|tojson }},{% endif %}
    {% if body.organization %}"github.org": {{ body.organization.login|tojson }},{% endif %}
    "github.delivery": "{{ headers['X-GitHub-Delivery'] }}"
  },
  "related": [
    {% if body.sender %}{"prefect.resource.id": {{ ("github.user." ~ body.sender.login)|tojson }},
     "prefect.resource.role": "sender"},{% endif %}
    {% if body.installation %}{"prefect.resource.role": "installation",
     "prefect.resource.id": "github.installation.{{ body.installation.id }}"},{% endif %}
    {"prefect.resource.id": "github.any", "prefect.resource.role": "sender"}
  ],
  "payload": {{ body|tojson }}
}"""
JSON = "application/json"
FORM = """{
  "event": "github.{{ headers['X-GitHub-Event'] }}",
  "resource": {"prefect.resource.id": "github.delivery.{{ headers['X-GitHub-Delivery'] }}"},
  "payload": {"github": {{ body.payload }}}
}"""


def build_corpus(store: Path | str, *, seeded: bool = False) -> hooklab.Workspace:
    """A store (a file or a URL) of every GitHub delivery as JSON and as a form, failures, a
    deleted webhook's history, a seed webhook's form posts, repeated headers and a body that
    is not UTF-8. `seeded`: ids and the clock from a seed, so that two stores hold the same."""
    if seeded:
        ids = itertools.count(1)
        ticks = itertools.count()
        ws = hooklab.Workspace(
            store,
            new_id=lambda: uuid.UUID(int=next(ids)),
            clock=lambda: START + timedelta(seconds=next(ticks)),
        )
    else:
        ws = hooklab.Workspace(store)
    github = ws.create_webhook("github", GITHUB)
    form = ws.create_webhook("github-form", FORM)
    gone = ws.create_webhook("gone", GITHUB)
    seed = ws.create_webhook("models", DYNAMIC_TEMPLATE)
    moment = iter(START + timedelta(minutes=7 * n) for n in range(10_000))
    for number, path in enumerate(github_deliveries()):
        headers = {"X-GitHub-Event": path.parent.name, "X-GitHub-Delivery": f"d-{number}"}
        body = path.read_bytes()
        for hook, request in (
            (github, HookRequest.fake(method="POST", json=json.loads(body), headers=headers)),
            (form, HookRequest.fake(
                method="POST",
                body=urlencode({"payload": body.decode()}),
                headers={**headers, "Content-Type": "application/x-www-form-urlencoded"},
            )),
            (gone if number % 10 == 0 else github, HookRequest.fake(
                method="POST", body=b'{"action": ', headers={**headers, "Content-Type": JSON},
            )),
            (seed, HookRequest.fake(
                method="POST", form={"model": f"m{number}", "friendly_name": f"Model {number}"},
            )),
        ):  # fmt: skip
            ws.receive(hook.slug, _at(request, next(moment)))
    repeated = HookRequest.fake(
        method="POST",
        body=b"model=\xff&friendly_name=x",
        headers=[("Content-Type", "text/plain; charset=latin-1"), ("X-Tag", "a"), ("x-tag", "b")],
    )
    ws.receive(seed.slug, _at(repeated, next(moment)))
    ws.delete_webhook(gone.id)
    return ws


def _at(request: HookRequest, moment: datetime) -> HookRequest:
    """The request as received at `moment`, its id made of the moment (the same in any store)."""
    return replace(
        request, received=moment, id=str(uuid.uuid5(uuid.NAMESPACE_URL, moment.isoformat()))
    )


# A PostgreSQL store's tables as the readout reads them: SQLite's columns, in native types.
# It stands in for the PostgreSQL store's own schema until that lands.
POSTGRES_SCHEMA = """
CREATE TABLE webhooks (id text PRIMARY KEY, name text NOT NULL);
CREATE TABLE requests (
    seq bigint PRIMARY KEY, id text NOT NULL UNIQUE, webhook_id text, method text NOT NULL,
    path text NOT NULL, query text NOT NULL, headers json NOT NULL, body bytea NOT NULL,
    received timestamptz NOT NULL, client text NOT NULL, status integer NOT NULL, error text,
    rendered text
);
CREATE TABLE events (
    seq bigint PRIMARY KEY, id text NOT NULL, request_id text, webhook_id text,
    event text NOT NULL, occurred timestamptz NOT NULL, received timestamptz NOT NULL,
    resource json NOT NULL, related json NOT NULL, payload json NOT NULL, follows text,
    failed boolean NOT NULL, error text
);
CREATE INDEX events_by_time ON events (received);
CREATE INDEX requests_by_time ON requests (received);
CREATE INDEX events_failed_by_time ON events (received) WHERE failed;
"""
# Each table's columns, and what makes each of SQLite's values PostgreSQL's.
COLUMNS = {
    "webhooks": {"id": "", "name": ""},
    "requests": {
        "seq": "", "id": "", "webhook_id": "", "method": "", "path": "", "query": "",
        "headers": "::json", "body": "", "received": "::timestamptz", "client": "", "status": "",
        "error": "", "rendered": "",
    },
    "events": {
        "seq": "", "id": "", "request_id": "", "webhook_id": "", "event": "",
        "occurred": "::timestamptz", "received": "::timestamptz", "resource": "::json",
        "related": "::json", "payload": "::json", "follows": "", "failed": " <> 0", "error": "",
    },
}  # fmt: skip


def copy_to_postgres(store: Path, url: str, schema: str) -> str:
    """A copy of a SQLite store's history in a new PostgreSQL schema; the URL that reads it.
    Each table goes through PostgreSQL's COPY (ADBC's bulk ingest) as text, then into its
    native types."""
    import adbc_driver_postgresql.dbapi as pg
    import pyarrow as pa

    with pg.connect(url) as connection, connection.cursor() as cursor:
        cursor.execute(f"CREATE SCHEMA {schema}")
        connection.commit()
    copy = f"{url}{'&' if '?' in url else '?'}options=-csearch_path%3D{schema}"
    with pg.connect(copy) as connection, connection.cursor() as cursor:
        for statement in POSTGRES_SCHEMA.split(";"):
            if statement.strip():
                cursor.execute(statement)
        for table, columns in COLUMNS.items():
            # Read through sqlite3: this process may hold the store open through it, and
            # SQLite's ADBC driver is another copy of SQLite (see hooklab.store.sidecar).
            source = sqlite3.connect(store)
            found = source.execute(f"SELECT {', '.join(columns)} FROM {table}").fetchall()
            source.close()
            values = zip(*found, strict=True) if found else [[] for _ in columns]
            rows = pa.table(dict(zip(columns, map(list, values), strict=True)))
            cursor.adbc_ingest(f"staged_{table}", rows, mode="create")
            casts = ", ".join(f"{name}{cast}" for name, cast in columns.items())
            cursor.execute(f"INSERT INTO {table} SELECT {casts} FROM staged_{table}")
            cursor.execute(f"DROP TABLE staged_{table}")
        connection.commit()
    return copy


def drop_schema(url: str, copy: str) -> None:
    """Remove a schema `copy_to_postgres` made (named in its URL)."""
    import adbc_driver_postgresql.dbapi as pg

    schema = copy.rsplit("%3D", 1)[1]
    with pg.connect(url) as connection, connection.cursor() as cursor:
        cursor.execute(f"DROP SCHEMA {schema} CASCADE")
        connection.commit()
