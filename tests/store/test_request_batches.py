"""Stored requests read a batch at a time, on both backends: every request the filter selects,
each once, oldest first, in batches no larger than asked; the same as reading them at once."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from pathlib import Path
from uuid import UUID

import pytest

from hooklab import HookRequest, Workspace
from hooklab.store.contract import StoredRequest
from hooklab.store.filters import EVERYTHING, HistoryFilter

TEMPLATE = '{"event": "model.{{ body.model }}", "resource": {"prefect.resource.id": "m"}}'


@pytest.fixture(params=["sqlite", "postgres"])
def workspace(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    clock: Callable[[], datetime],
    new_id: Callable[[], UUID],
) -> Iterator[Workspace]:
    """A workspace on a SQLite file, or on a fresh PostgreSQL database, with 23 requests to
    two webhooks (two to one for each to the other), a second apart."""
    if request.param == "sqlite":
        target = str(tmp_path / "hooklab.db")
    else:
        target = str(request.getfixturevalue("postgres_url"))
    ws = Workspace(target, clock=clock, new_id=new_id)
    models = ws.create_webhook("models", TEMPLATE)
    other = ws.create_webhook("other", TEMPLATE)
    for number in range(23):
        hook = other if number % 3 == 2 else models
        ws.receive(hook.slug, HookRequest.fake(method="POST", form={"model": f"m{number}"}))
    yield ws
    ws.close()


def ids(found: Sequence[StoredRequest]) -> list[str]:
    return [record.request.id for record in found]


def read_in_batches(
    ws: Workspace, where: HistoryFilter, limit: int | None, batch: int
) -> tuple[int, list[list[str]]]:
    total, batches = ws.store.request_batches(where, limit=limit, batch=batch)
    return total, [ids(found) for found in batches]


@pytest.mark.parametrize("batch", [1, 4, 7, 100])
def test_batches_hold_every_selected_request_once_in_order(
    workspace: Workspace, batch: int
) -> None:
    models = workspace.resolve_webhook("models")
    received = workspace.requests()["received"].tolist()
    filters = [
        EVERYTHING,
        HistoryFilter(models),
        HistoryFilter(models, since=received[5]),
        HistoryFilter(since=received[3], until=received[20]),
        HistoryFilter(models, until=received[0]),  # nothing
    ]
    for where in filters:
        whole = ids(workspace.store.request_records(where))
        for limit in (None, 1, 5, 100):
            expected = whole[-limit:] if limit is not None else whole
            total, batches = read_in_batches(workspace, where, limit, batch)
            assert total == len(expected), (where, limit)
            assert [i for found in batches for i in found] == expected, (where, limit)
            assert all(0 < len(found) <= batch for found in batches)
            assert all(len(found) == batch for found in batches[:-1])


def test_requests_stored_while_reading_are_not_read(workspace: Workspace) -> None:
    """The requests are the ones there when reading starts: a receiver storing more
    meanwhile changes neither the count nor the batches."""
    before = ids(workspace.store.request_records(EVERYTHING))
    total, batches = workspace.store.request_batches(EVERYTHING, batch=5)
    first = next(batches)
    hook = workspace.get_webhook(workspace.resolve_webhook("models"))
    for number in range(7):
        workspace.receive(hook.slug, HookRequest.fake(method="POST", form={"model": f"n{number}"}))
    rest = [i for found in batches for i in ids(found)]
    assert total == len(before) == 23
    assert ids(first) + rest == before


def test_the_workspace_reads_a_webhooks_requests_in_batches(workspace: Workspace) -> None:
    total, batches = workspace.captured_batches("models", limit=10, batch=4)
    found = [record for batch in batches for record in batch]
    assert total == len(found) == 10
    assert ids(found) == ids(workspace.captured("models"))[-10:]
    assert {record.webhook_id for record in found} == {workspace.resolve_webhook("models")}
