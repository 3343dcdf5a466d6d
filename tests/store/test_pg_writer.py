"""What `hooklab serve` writes to PostgreSQL (its batch writer: one statement a batch) is what
the store's own `record` writes, value for value; a batch too large for one statement is
still one transaction."""

from __future__ import annotations

import asyncio
import time
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


def test_a_batch_beyond_one_statements_parameters_is_stored_whole_or_not_at_all(
    postgres_url: str,
) -> None:
    ws = Workspace(postgres_url)
    try:
        hook = ws.create_webhook("models", TEMPLATE)
        # 6,000 requests and their events are 144,000 parameters: more than one statement takes.
        many = [
            ws.process(hook.slug, HookRequest.fake(method="POST", form={"model": str(i)}))
            for i in range(6_000)
        ]
        writer = ws.store.writer()

        async def write(outcomes: list[Outcome]) -> None:
            await writer.write(outcomes)  # type: ignore[misc]

        asyncio.run(write(many))
        assert ws.store.count("requests") == 6_000
        assert ws.store.count("events") == 6_000
        # The same requests again: the first chunk would be new, the last is refused (ids
        # are unique); the transaction keeps none of it.
        again = [
            ws.process(hook.slug, HookRequest.fake(method="POST", form={"model": "x"}))
            for _ in range(5_999)
        ]
        try:
            asyncio.run(write([*again, many[-1]]))
        except Exception as exc:  # the duplicate id, as PostgreSQL words it
            assert "duplicate key" in str(exc)
        else:
            raise AssertionError("a duplicate request id was stored")
        assert ws.store.count("requests") == 6_000
        writer.close()
    finally:
        ws.close()


def test_an_idle_connection_the_server_closed_is_replaced_not_a_503(
    postgres_cluster: PostgresCluster, postgres_url: str
) -> None:
    """PostgreSQL restarted, idle_session_timeout, pg_terminate_backend: the next batch goes
    on a new connection instead of failing."""
    ws = Workspace(postgres_url)
    hook = ws.create_webhook("models", TEMPLATE)
    writer = ws.store.writer()
    database = postgres_url.rsplit("/", 1)[1]

    async def write(n: int) -> None:
        outcome = ws.process(hook.slug, HookRequest.fake(method="POST", form={"model": str(n)}))
        await writer.write([outcome])  # type: ignore[misc]

    try:
        asyncio.run(write(1))
        with postgres_cluster.connect(database) as admin:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE application_name = 'hooklab serve'"
            )
        time.sleep(0.2)  # the goodbye reaches the idle socket
        asyncio.run(write(2))
        assert ws.store.count("requests") == 2
    finally:
        writer.close()
        ws.close()


def test_a_connection_that_fails_leaves_the_batches_in_flight_on_others_alone(
    postgres_cluster: PostgresCluster, postgres_url: str
) -> None:
    """One batch's connection lost must not close another's: that batch commits, and its
    senders must hear so, not 503."""
    ws = Workspace(postgres_url)
    hook = ws.create_webhook("models", TEMPLATE)
    writer = ws.store.writer()
    database = postgres_url.rsplit("/", 1)[1]

    def outcome(n: int) -> Outcome:
        return ws.process(hook.slug, HookRequest.fake(method="POST", form={"model": str(n)}))

    async def scenario() -> tuple[BaseException | None, BaseException | None]:
        with postgres_cluster.connect(database) as blocker:
            blocker.execute("BEGIN")
            blocker.execute("LOCK TABLE requests IN EXCLUSIVE MODE")  # both batches wait
            first = asyncio.ensure_future(writer.write([outcome(1)]))  # type: ignore[arg-type]
            second = asyncio.ensure_future(writer.write([outcome(2)]))  # type: ignore[arg-type]
            await asyncio.sleep(0.5)
            with postgres_cluster.connect(database) as admin:
                [(victim,)] = admin.execute(
                    "SELECT pid FROM pg_stat_activity WHERE application_name = 'hooklab serve' "
                    "AND wait_event_type = 'Lock' ORDER BY backend_start DESC LIMIT 1"
                ).fetchall()
                admin.execute("SELECT pg_terminate_backend(%s)", (victim,))
            await asyncio.sleep(0.5)
            blocker.execute("COMMIT")
            done = await asyncio.gather(first, second, return_exceptions=True)
        return done[0], done[1]

    try:
        results = asyncio.run(scenario())
        assert sum(r is None for r in results) == 1  # one connection was lost, one not
        assert ws.store.count("requests") == 1
    finally:
        writer.close()
        ws.close()
