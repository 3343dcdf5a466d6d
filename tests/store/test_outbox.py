"""The forwarding outbox: the events table is the queue, a destination's mark moves on delivery."""

from __future__ import annotations

from pathlib import Path

from hooklab.core.request import HookRequest
from hooklab.store.filters import EVERYTHING
from hooklab.workspace import Workspace

TEMPLATE = '{"event": "e.{{ body.n }}", "resource": {"prefect.resource.id": "r"}}'


def test_events_stored_after_forward_to_are_pending_until_delivered(tmp_path: Path) -> None:
    ws = Workspace(tmp_path / "hooklab.db")
    hook = ws.create_webhook("h", TEMPLATE)
    ws.receive(hook.slug, HookRequest.fake(method="POST", json={"n": 0}))  # before: not queued
    ws.forward_to("http://127.0.0.1:4200/api/")
    for n in range(1, 4):
        ws.receive(hook.slug, HookRequest.fake(method="POST", json={"n": n}))
    ws.receive(hook.slug, HookRequest.fake(method="POST", body=b'{"n": "\\""}'))  # failed: queued
    outbox = ws.outbox()
    [state] = outbox.destinations()
    assert (state.url, state.pending, state.delivered) == ("http://127.0.0.1:4200/api", 4, 0)
    batch = outbox.next_batch(state.url, limit=2, max_bytes=1_000_000)
    assert batch is not None and len(batch) == 2
    assert batch.ids == list(ws.events()["id"][1:3])
    outbox.delivered(state.url, batch)
    outbox.failed(state.url, "Prefect went away")
    [state] = outbox.destinations()
    assert (state.pending, state.delivered, state.last_error) == (2, 2, "Prefect went away")
    # A second Workspace on the file (a restarted process) sees the same queue.
    again = Workspace(tmp_path / "hooklab.db").outbox()
    rest = again.next_batch(state.url, limit=10, max_bytes=1_000_000)
    assert rest is not None and rest.ids == list(ws.events()["id"][3:])
    assert '"event":"prefect-cloud.webhook.failed"' in rest.texts[-1]
    outbox.close()
    again.close()


def test_a_batch_stops_at_its_byte_budget_but_holds_at_least_one_event(tmp_path: Path) -> None:
    ws = Workspace(tmp_path / "hooklab.db")
    hook = ws.create_webhook("h", TEMPLATE)
    for n in range(5):
        ws.receive(hook.slug, HookRequest.fake(method="POST", json={"n": n}))
    sizes = [len(b) for b in ws.outbox().history(EVERYTHING, limit=100, max_bytes=1)]
    assert sizes == [1, 1, 1, 1, 1]
    assert [len(b) for b in ws.outbox().history(EVERYTHING, limit=2, max_bytes=10**6)] == [2, 2, 1]
