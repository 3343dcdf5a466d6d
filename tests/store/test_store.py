"""The SQLite store: WAL, recorded migrations, durability, one transaction, no secrets kept."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

import hooklab
import hooklab.store.rows
from hooklab import HookRequest
from hooklab.store.migrations import MIGRATIONS, statements
from hooklab.store.sqlite import SqliteStore as Store

TEMPLATE = '{"event": "e", "resource": {"prefect.resource.id": "{{ body.model }}"}}'


def raw(path: Path, sql: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(path) as db:
        return db.execute(sql).fetchall()


def test_the_file_is_in_wal_mode(tmp_path: Path) -> None:
    Store(tmp_path / "h.db").close()
    assert raw(tmp_path / "h.db", "PRAGMA journal_mode") == [("wal",)]


def test_migrations_are_recorded_in_the_file_and_run_once(tmp_path: Path) -> None:
    store = Store(tmp_path / "h.db")
    names = [name for name, _ in MIGRATIONS]
    assert store.migrations() == names
    store.close()
    applied = raw(tmp_path / "h.db", "SELECT name, applied FROM migrations")
    Store(tmp_path / "h.db").close()
    assert raw(tmp_path / "h.db", "SELECT name, applied FROM migrations") == applied


def test_the_parent_folder_is_created(tmp_path: Path) -> None:
    Store(tmp_path / "a" / "b" / "h.db").close()
    assert (tmp_path / "a" / "b" / "h.db").is_file()


def test_reopening_keeps_webhooks_requests_and_events(tmp_path: Path) -> None:
    path = tmp_path / "h.db"
    first = hooklab.Workspace(path)
    hook = first.create_webhook("models", TEMPLATE, description="kept")
    first.receive(hook.slug, HookRequest.fake(method="POST", form={"model": "m1"}))
    first.close()

    again = hooklab.Workspace(path)
    assert again.get_webhook(hook.id) == hook
    assert again.events()["resource.id"].tolist() == ["m1"]
    assert again.requests()["body"].tolist() == ["model=m1"]
    again.close()


def test_a_request_and_its_events_are_written_together_or_not_at_all(
    workspace: hooklab.Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    hook = workspace.create_webhook("models", TEMPLATE)
    outcome = workspace.process(hook.slug, HookRequest.fake(method="POST", form={"model": "m1"}))

    def broken_event_row(*args: Any) -> tuple[Any, ...]:
        return (None,) * 12  # violates NOT NULL: the event insert fails after the request's

    monkeypatch.setattr(hooklab.store.rows, "event_row", broken_event_row)
    with pytest.raises(sqlite3.IntegrityError):
        workspace.record([outcome])
    assert workspace.store.count("requests") == 0
    assert workspace.store.count("events") == 0

    monkeypatch.undo()
    assert workspace.record([outcome]) == 1
    assert (workspace.store.count("requests"), workspace.store.count("events")) == (1, 1)


def test_a_batch_of_outcomes_is_one_transaction(workspace: hooklab.Workspace) -> None:
    hook = workspace.create_webhook("models", TEMPLATE)
    request = HookRequest.fake(method="POST", form={"model": "m1"})
    good = workspace.process(hook.slug, request)
    duplicate = workspace.process(hook.slug, request)  # same request id: the second insert fails
    with pytest.raises(sqlite3.IntegrityError):
        workspace.record([good, duplicate])
    assert workspace.store.count("requests") == 0


def test_authorization_is_never_written_to_the_file(tmp_path: Path) -> None:
    path = tmp_path / "h.db"
    ws = hooklab.Workspace(path)
    secret = "Bearer sekrit-0123456789"
    hook = ws.create_webhook("models", TEMPLATE)
    bad = ws.create_webhook("bad", "x {{ 1 }}")  # fails: its failure event holds the headers
    for slug in (hook.slug, bad.slug):
        ws.receive(slug, HookRequest.fake(method="POST", form={"model": "m"}, headers={
            "Authorization": secret}))  # fmt: skip
    assert "authorization" not in str(ws.requests()["headers"].tolist()).lower()
    ws.close()
    everything = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.is_file())
    assert b"sekrit-0123456789" not in everything
    assert b"model=m" in everything  # the requests themselves are there


def test_stored_requests_come_back_exactly(workspace: hooklab.Workspace) -> None:
    hook = workspace.create_webhook("models", TEMPLATE)
    request = HookRequest.fake(
        method="PATCH", path=f"/hooks/{hook.slug}", query="a=1&b=2", body=b"\x00\xffraw",
        headers=[("X-B", "2"), ("X-A", "1"), ("X-B", "3")], client="10.1.2.3",
    )  # fmt: skip
    workspace.receive(hook.slug, request)
    (stored,) = workspace.captured()
    assert stored.request == request
    assert stored.status == 400 and stored.webhook_id == hook.id


def test_only_known_columns_and_tables_reach_sql(tmp_path: Path) -> None:
    store = Store(tmp_path / "h.db")
    with pytest.raises(ValueError, match="cannot be looked up by 'slug; DROP TABLE webhooks'"):
        store.webhook_by("slug; DROP TABLE webhooks", "x")
    with pytest.raises(ValueError, match="No table 'migrations'"):
        store.count("migrations")
    assert store.count("webhooks") == 0
    store.close()


def test_stored_events_read_back_as_they_were_produced(workspace: hooklab.Workspace) -> None:
    template = """{"event": "e", "resource": {"prefect.resource.id": "{{ body.model }}", "x": "é"},
        "occurred": "2024-02-03T04:05:06.789Z", "follows": "00000000-0000-0000-0000-00000000000a",
        "related": [{"prefect.resource.id": "r", "prefect.resource.role": "thing"}],
        "payload": {"n": [1, 2.5, null, true], "text": "<é & \\u2603>"}}"""
    hook = workspace.create_webhook("models", template)
    outcome = workspace.receive(hook.slug, HookRequest.fake(method="POST", form={"model": "m"}))
    produced = outcome.events[0]
    row = workspace.events().iloc[0]
    assert row["id"] == str(produced.id)
    assert row["occurred"] == produced.occurred
    assert row["received"] == produced.received
    assert row["resource.x"] == "é"
    assert row["payload"] == produced.payload == {"n": [1, 2.5, None, True], "text": "<é & ☃>"}
    assert row["related"] == [r.root for r in produced.related]
    assert row["related.thing"] == "r"
    assert row["related.webhook"] == f"prefect-cloud.webhook.{hook.id}"


def test_json_columns_hold_the_text_json_writes(workspace: hooklab.Workspace) -> None:
    template = """{"event": "e", "resource": {"prefect.resource.id": "{{ body.model }}"},
        "payload": {"text": "<é & \\u2603 \\u0000>", "n": [1, 2.5, null, true, 1e400]}}"""
    hook = workspace.create_webhook("models", template)
    request = HookRequest.fake(method="POST", form={"model": "é"}, headers={"X-Name": "Zoë"})
    produced = workspace.receive(hook.slug, request).events[0]
    stored = raw(Path(workspace.path), "SELECT resource, related, payload FROM events")
    values = (produced.resource.root, [r.root for r in produced.related], produced.payload)
    assert stored == [tuple(json.dumps(value, ensure_ascii=False) for value in values)]
    assert raw(Path(workspace.path), "SELECT headers FROM requests") == [
        (json.dumps(request.headers),)
    ]


def test_a_file_made_before_0002_ends_with_the_indexes_the_queries_use(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE migrations (name TEXT PRIMARY KEY, applied TEXT NOT NULL)")
        for statement in statements(dict(MIGRATIONS)["0001_initial"]):
            db.execute(statement)
        db.execute("INSERT INTO migrations VALUES ('0001_initial', '2024-01-01')")
    Store(path).close()
    indexes = raw(path, "SELECT name FROM sqlite_master WHERE type='index' AND sql IS NOT NULL")
    # 0002 dropped the four no query used; 0004 added those the history's time windows use.
    assert sorted(name for (name,) in indexes) == [
        "events_by_time", "events_by_webhook", "events_failed_by_time",
        "requests_by_time", "requests_by_webhook",
    ]  # fmt: skip
