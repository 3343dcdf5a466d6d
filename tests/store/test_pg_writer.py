"""What `hooklab serve` writes to PostgreSQL (its batch writer, columns sent as arrays) is what
the store's own `record` writes, value for value."""

from __future__ import annotations

import asyncio
from typing import Any

from pg_support import PostgresCluster

from hooklab import HookRequest, Workspace
from hooklab.core.outcome import Outcome

TEMPLATE = """{
  "event": "model.{{ body.model }}",
  "resource": {"prefect.resource.id": "m.{{ body.model }}", "note": {{ body.note|tojson }}},
  "payload": {"n": {{ body.n|default(0) }}}
}"""


def requests() -> list[HookRequest]:
    return [
        HookRequest.fake(method="POST", form={"model": "a", "note": "plain"}),
        HookRequest.fake(method="POST", form={"model": "ü 🚀", "note": 'quote " and \\ slash'}),
        HookRequest.fake(
            method="POST",
            path="/hooks/x",
            headers={"Content-Type": "application/json", "X-Odd": "tab\tin"},
            body='{"model": "j", "note": null, "n": 3}',
        ),
        HookRequest.fake(method="POST", body=b"\x00\xff not text", headers={"X-A": "1"}),
        HookRequest.fake(method="POST", form={"model": "bad", "n": "not a number"}),  # fails
    ]


def rows(ws: Workspace, table: str) -> list[dict[str, Any]]:
    _, dumped = ws.store.dump(table, after=0, limit=100)
    return [{k: v for k, v in row.items() if k not in ("seq", "xid")} for row in dumped]


def test_a_batch_written_by_the_server_reads_back_as_record_writes_it(
    postgres_cluster: PostgresCluster,
) -> None:
    with postgres_cluster.database() as served_url, postgres_cluster.database() as recorded_url:
        served, recorded = Workspace(served_url), Workspace(recorded_url)
        try:
            hook = served.create_webhook("models", TEMPLATE)
            outcomes: list[Outcome] = [served.process(hook.slug, r) for r in requests()]
            assert any(o.failed for o in outcomes) and any(not o.failed for o in outcomes)
            writer = served.store.writer()

            async def write() -> None:
                await writer.write(outcomes[:2])  # type: ignore[misc]
                await writer.write(outcomes[2:])  # type: ignore[misc]
                await writer.write([])  # type: ignore[misc]

            asyncio.run(write())
            writer.close()
            recorded.store.record(outcomes)
            for table in ("requests", "events"):
                written = rows(served, table)
                assert len(written) == (
                    5 if table == "requests" else sum(len(o.events) for o in outcomes)
                )
                assert written == rows(recorded, table)
        finally:
            served.close()
            recorded.close()
