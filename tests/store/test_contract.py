"""The store contract, on both backends: what every layer above relies on, whichever it is.

Each test runs once on a SQLite file and once on a fresh PostgreSQL database that the suite
started itself (`tests/pg_support.py`).
"""

from __future__ import annotations

import itertools
import re
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import pandas as pd
import pytest

import hooklab.store.rows
from hooklab import HookRequest, Workspace
from hooklab.core.errors import InvalidInput
from hooklab.store import open_store
from hooklab.store.copying import copy_store
from hooklab.store.filters import EVERYTHING, HistoryFilter

TEMPLATE = '{"event": "model.{{ body.model }}", "resource": {"prefect.resource.id": "m"}}'


@pytest.fixture(params=["sqlite", "postgres"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A store's name: a SQLite file, or a fresh PostgreSQL database's URL."""
    if request.param == "sqlite":
        return str(tmp_path / "hooklab.db")
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def workspace(
    target: str, clock: Callable[[], datetime], new_id: Callable[[], UUID]
) -> Iterator[Workspace]:
    ws = Workspace(target, clock=clock, new_id=new_id)
    yield ws
    ws.close()


def post(model: str) -> HookRequest:
    return HookRequest.fake(method="POST", form={"model": model})


def test_both_backends_record_the_same_named_migrations(workspace: Workspace) -> None:
    assert workspace.store.migrations() == [
        "0001_initial", "0002_fewer_indexes", "0003_forwarding", "0004_history_windows",
    ]  # fmt: skip


def test_webhooks_round_trip_with_every_field(workspace: Workspace) -> None:
    account, _key = workspace.create_service_account("ci")
    hook = workspace.create_webhook("models", TEMPLATE, "desc", service_account_id=account.id)
    hook = workspace.update_webhook(
        hook.id, signature_preset="github", signature_secret="a-long-random-secret"
    )
    again = Workspace(workspace.store_url)
    try:
        assert again.get_webhook("models") == hook
        assert again.webhook_by_slug(hook.slug) == hook
        assert again.list_service_accounts() == [account]
    finally:
        again.close()


def test_a_request_row_is_written_and_read_by_its_column_names(workspace: Workspace) -> None:
    # The history frame reads the columns by name in SQL; `captured` reads the row by name in
    # Python: a value written to, or read from, another column than its own shows here.
    hook = workspace.create_webhook("broken", '{"event": {{ body.model }}}')
    workspace.receive(hook.slug, post("m"))
    (stored,) = workspace.captured()
    (row,) = workspace.requests().to_dict("records")
    error = (
        "Template output is not valid JSON: body.model (line 1 of the template) is written bare "
        "where a JSON value goes, and its text is not JSON: write {{ body.model|tojson }} "
        "(Expecting value at line 1 column 11 (char 10))"
    )
    assert (row["status"], row["error"], row["method"], row["body"]) == (
        400,
        error,
        "POST",
        "model=m",
    )
    assert (stored.status, stored.error, stored.rendered) == (400, error, '{"event": m}')
    assert (stored.request.id, stored.webhook_id, row["webhook_id"]) == (
        row["id"],
        hook.id,
        hook.id,
    )
    assert (stored.request.method, stored.request.body, stored.request.client) == (
        "POST", b"model=m", row["client"],
    )  # fmt: skip


def test_a_change_is_seen_by_the_receivers_directory_at_once(workspace: Workspace) -> None:
    hook = workspace.create_webhook("models", TEMPLATE)
    assert workspace.webhook_by_slug(hook.slug) == hook
    rotated = workspace.rotate_webhook(hook.id)
    assert workspace.webhook_by_slug(hook.slug) is None
    assert workspace.webhook_by_slug(rotated.slug) == rotated
    assert workspace.receive(hook.slug, post("a")).status == 404


def test_a_change_through_another_workspace_reaches_this_one_within_a_second(
    workspace: Workspace,
) -> None:
    hook = workspace.create_webhook("models", TEMPLATE)
    assert workspace.webhook_by_slug(hook.slug) is not None
    other = Workspace(workspace.store_url)
    try:
        rotated = other.rotate_webhook(hook.id)
        deadline = time.monotonic() + 1.0
        while workspace.webhook_by_slug(rotated.slug) is None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert workspace.webhook_by_slug(rotated.slug) == rotated
        assert workspace.webhook_by_slug(hook.slug) is None
    finally:
        other.close()


def test_history_reads_back_the_same_frames_on_both(
    workspace: Workspace, tmp_path: Path, clock: Callable[[], datetime]
) -> None:
    hook = workspace.create_webhook("models", TEMPLATE)
    for model in ["a", "b"]:
        assert workspace.receive(hook.slug, post(model)).status == 204
    bad = HookRequest.fake(method="POST", body=b"{", headers={"Content-Type": "application/json"})
    assert workspace.receive(hook.slug, bad).status == 400
    reference = Workspace(tmp_path / "reference.db", clock=clock, new_id=workspace.new_id)
    try:
        copy_store(workspace.store, reference.store)
        for read in ("events", "requests"):
            ours, theirs = getattr(workspace, read)(), getattr(reference, read)()
            pd.testing.assert_frame_equal(ours, theirs, check_dtype=False)
        events = workspace.events()
        assert events["event"].tolist() == ["model.a", "model.b", "prefect-cloud.webhook.failed"]
        assert events["failed"].tolist() == [False, False, True]
        assert workspace.events(failed=True)["event"].tolist() == ["prefect-cloud.webhook.failed"]
        assert len(workspace.requests(failed=False)) == 2
        assert workspace.captured()[0].request.body == b"model=a"
    finally:
        reference.close()


def test_a_request_and_its_events_are_written_together_or_not_at_all(
    workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    hook = workspace.create_webhook("models", TEMPLATE)
    outcome = workspace.process(hook.slug, post("a"))

    def broken_event_row(*args: Any) -> tuple[Any, ...]:
        return (None,) * 12  # violates NOT NULL: the event insert fails after the request's

    monkeypatch.setattr(hooklab.store.rows, "event_row", broken_event_row)
    with pytest.raises(Exception, match=r"(?i)null"):
        workspace.record([outcome])
    assert (workspace.count("requests"), workspace.count("events")) == (0, 0)
    monkeypatch.undo()
    assert workspace.record([outcome]) == 1
    assert (workspace.count("requests"), workspace.count("events")) == (1, 1)


def test_no_two_workspaces_draw_the_same_count(workspace: Workspace) -> None:
    other = Workspace(workspace.store_url)
    try:
        drawn = [ws.count_up("sessions") for ws in itertools.islice(
            itertools.cycle([workspace, other]), 6)]  # fmt: skip
    finally:
        other.close()
    assert drawn == [0, 1, 2, 3, 4, 5]


def test_the_feed_follows_what_any_workspace_stores(workspace: Workspace) -> None:
    hook = workspace.create_webhook("models", TEMPLATE)
    start = workspace.feed(0)
    assert start.count == 0
    other = Workspace(workspace.store_url)
    try:
        other.receive(hook.slug, post("a"))
        other.receive(hook.slug, HookRequest.fake(method="POST", body=b"{",
                      headers={"Content-Type": "application/json"}))  # fmt: skip
    finally:
        other.close()
    feed = workspace.feed(start.position)
    assert (feed.count, feed.failed) == (2, 1)
    assert [row.event for row in feed.rows] == ["model.a", "prefect-cloud.webhook.failed"]
    assert feed.rows[0].resource_id == "m"
    assert workspace.feed(feed.position).count == 0
    assert workspace.feed(start.position, webhook="someone-else").count == 0


def test_the_outbox_hands_out_what_is_pending_until_it_is_delivered(
    workspace: Workspace,
) -> None:
    hook = workspace.create_webhook("models", TEMPLATE)
    workspace.receive(hook.slug, post("before"))  # stored before: not forwarded
    url = workspace.forward_to("http://127.0.0.1:4200/api/").url
    assert url == "http://127.0.0.1:4200/api"
    for model in ["a", "b", "c"]:
        workspace.receive(hook.slug, post(model))
    [state] = workspace.forwarding()
    assert (state.pending, state.delivered) == (3, 0)
    outbox = workspace.outbox()
    try:
        first = outbox.next_batch(url, limit=2, max_bytes=10**6)
        assert first is not None and len(first) == 2 and '"model.a"' in first.texts[0]
        rest = outbox.next_batch(url, limit=10, max_bytes=10**6, after=first.last_seq)
        assert rest is not None and '"model.c"' in rest.texts[0]
        outbox.delivered(url, first)
        assert workspace.forwarding()[0].pending == 1
        again = outbox.next_batch(url, limit=10, max_bytes=10**6)  # from the first undelivered
        assert again is not None and again.ids == rest.ids
        outbox.delivered(url, again)
        assert outbox.next_batch(url, limit=10, max_bytes=10**6) is None
        [state] = workspace.forwarding()
        assert (state.pending, state.delivered) == (0, 3)
        backfill = list(outbox.history(EVERYTHING, limit=3, max_bytes=10**6))
        assert [len(batch) for batch in backfill] == [3, 1]
        failed = list(outbox.history(HistoryFilter(failed=True), limit=3, max_bytes=10**6))
        assert failed == []
    finally:
        outbox.close()


def test_stopping_forwarding_removes_the_destination_and_drops_what_it_had_pending(
    workspace: Workspace,
) -> None:
    hook = workspace.create_webhook("m", TEMPLATE)
    kept = workspace.forward_to("http://127.0.0.1:4201/api").url
    gone = workspace.forward_to("http://user:pw@127.0.0.1:4200/api/").url
    for model in ("a", "b", "c"):
        workspace.receive(hook.slug, post(model))
    outbox = workspace.outbox()
    try:
        claimed = outbox.next_batch(gone, limit=1, max_bytes=10**6)  # one in flight
        assert claimed is not None
        assert workspace.stop_forwarding("http://127.0.0.1:4200/api/") == 3
        assert [d.url for d in workspace.forwarding()] == [kept]
        assert outbox.next_batch(gone, limit=10, max_bytes=10**6) is None
        outbox.delivered(gone, claimed)  # proof that comes after the removal changes nothing
        assert workspace.forwarding()[0].pending == 3
        with pytest.raises(
            InvalidInput, match=re.escape("not forwarding to http://127.0.0.1:4200/api")
        ):
            workspace.stop_forwarding(gone)
        workspace.forward_to(gone)  # added again: from now on, nothing from before
        assert [(d.url, d.pending) for d in workspace.forwarding()] == [(kept, 3), (gone, 0)]
    finally:
        outbox.close()


def test_a_copy_keeps_ids_and_copies_nothing_twice(workspace: Workspace, tmp_path: Path) -> None:
    account, _key = workspace.create_service_account("ci")
    hook = workspace.create_webhook("models", TEMPLATE, service_account_id=account.id)
    for model in ["a", "b"]:
        workspace.receive(hook.slug, post(model))
    copy = open_store(tmp_path / "copy.db")
    try:
        first = copy_store(workspace.store, copy)
        assert first["requests"] == 2 and first["events"] == 2 and first["webhooks"] == 1
        assert set(copy_store(workspace.store, copy).values()) == {0}
        back = Workspace(tmp_path / "copy.db")
        assert back.get_webhook(hook.id) == hook
        assert back.events()["id"].tolist() == workspace.events()["id"].tolist()
        back.close()
    finally:
        copy.close()


def test_a_copy_of_large_bodies_holds_a_bounded_batch_and_copies_each_once(
    workspace: Workspace, tmp_path: Path
) -> None:
    hook = workspace.create_webhook("models", TEMPLATE)
    bodies = [f"model={n}&pad=".encode() + bytes([97 + n]) * 1_000_000 for n in range(7)]
    for body in bodies:
        workspace.receive(hook.slug, HookRequest.fake(method="POST", body=body))
    copy = open_store(tmp_path / "copy.db")
    batches: list[int] = []
    try:
        first = copy_store(workspace.store, copy, batch_bytes=2_500_000, progress=batches.append)
        assert (first["requests"], first["events"]) == (7, 7)
        # Two requests of 1 MB a batch, then two events (each holds its request's body).
        assert batches[-8:] == [2, 2, 2, 1] * 2
        again = copy_store(workspace.store, copy, batch_bytes=2_500_000)
        assert set(again.values()) == {0}
        back = Workspace(tmp_path / "copy.db")
        try:
            assert [stored.request.body for stored in back.captured()] == bodies
        finally:
            back.close()
    finally:
        copy.close()


def test_deleting_an_account_deletes_its_webhooks_and_keeps_their_history(
    workspace: Workspace,
) -> None:
    account, _key = workspace.create_service_account("ci")
    hook = workspace.create_webhook("models", TEMPLATE, service_account_id=account.id)
    workspace.receive(hook.slug, post("a"))
    assert workspace.delete_service_account(account.id) == [hook.id]
    assert workspace.list_webhooks() == []
    assert workspace.webhook_by_slug(hook.slug) is None
    assert workspace.resolve_webhook(hook.id, deleted=True) == hook.id
    assert len(workspace.events(hook.id)) == 1


def test_history_filters_by_time_window(workspace: Workspace) -> None:
    hook = workspace.create_webhook("models", TEMPLATE)
    for model in ["a", "b", "c"]:
        workspace.receive(hook.slug, post(model))
    received = workspace.events()["received"].tolist()
    middle = workspace.events(since=received[1], until=received[2])
    assert middle["event"].tolist() == ["model.b"]
    assert len(workspace.requests(since=received[-1] + timedelta(seconds=1))) == 0
    assert len(workspace.requests(until=received[1])) == 1


def test_a_lone_surrogate_in_a_body_is_kept_not_refused_as_if_the_store_were_down(
    workspace: Workspace,
) -> None:
    """JSON's "\\ud800" is a character UTF-8 cannot carry: the request is stored (its failed
    event too) with U+FFFD in its place, as a NUL is, rather than answered 503 forever."""
    hook = workspace.create_webhook("models", TEMPLATE)
    request = HookRequest.fake(
        method="POST", body='{"model": "\\ud800"}', headers={"Content-Type": "application/json"}
    )
    outcome = workspace.receive(hook.slug, request)
    assert workspace.store.count("requests") == 1
    [stored] = workspace.captured()
    assert stored.request.body == request.body  # the bytes as sent: escapes are ASCII
    assert stored.status == outcome.status
    assert workspace.store.count("events") == len(outcome.events) == 1
