"""Two `hooklab serve --forward-to` replicas on one PostgreSQL store, into a real Prefect server:
every event reaches Prefect, none is sent by both replicas, and a replica killed with claims in
hand leaves them to the other once its lease runs out.

Prefect keeps an id once, so it cannot show a duplicate. Who delivered what is read from the
store instead: a trigger added by the test records every claim of an outbox row (by which
process) and every row's deletion (done once Prefect proved it stored the event)."""

from __future__ import annotations

import http.client
import json
import os
import signal
import threading
import time
from collections import Counter
from pathlib import Path

import psycopg
from cli_support import base_env, run_cli
from prefect_support import AUTH, PrefectServer
from replica_support import Replica, post, replicas, seconds_until

from hooklab.store.contract import StoredRequest
from hooklab.workspace import Workspace

TEMPLATE = (
    '{"event": "{{ body.kind }}", "resource": {"prefect.resource.id": "item.{{ body.n }}"}, '
    '"payload": {"n": {{ body.n }}}}'
)
LEASE = 3  # seconds a claim holds, in this test
AUDIT = """
CREATE TABLE audit (seq bigint, claimer text, what text, at timestamptz DEFAULT clock_timestamp());
CREATE FUNCTION audit_outbox() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        INSERT INTO audit (seq, claimer, what) VALUES (OLD.seq, OLD.claimed_by, 'delivered');
    ELSIF NEW.claimed_by IS NOT NULL AND NEW.claimed_by IS DISTINCT FROM OLD.claimed_by THEN
        INSERT INTO audit (seq, claimer, what) VALUES (NEW.seq, NEW.claimed_by, 'claimed');
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER outbox_audited AFTER UPDATE OR DELETE ON outbox
    FOR EACH ROW EXECUTE FUNCTION audit_outbox();
"""


def json_body(kind: str, n: int) -> bytes:
    return json.dumps({"kind": kind, "n": n}).encode()


def send(replica: Replica, slug: str, kind: str, n: int) -> int:
    return post(replica.base, slug, json_body(kind, n), content_type="application/json")


def forwarding_child(replica: Replica) -> int:
    """The pid of the replica's forwarding process."""
    assert replica.process is not None
    pid = replica.process.pid
    seconds_until(lambda: bool(Path(f"/proc/{pid}/task/{pid}/children").read_text().split()), 30)
    return int(Path(f"/proc/{pid}/task/{pid}/children").read_text().split()[0])


def held_by(db: psycopg.Connection[tuple[object, ...]], pid: int) -> list[int]:
    rows = db.execute(
        "SELECT seq FROM outbox WHERE split_part(claimed_by, ':', 2) = %s ORDER BY seq",
        (str(pid),),
    ).fetchall()
    return [int(str(row[0])) for row in rows]


def captured(url: str, kind: str) -> list[StoredRequest]:
    reader = Workspace(url)
    try:
        ids = set(reader.events(event=kind)["request_id"])
        return [r for r in reader.captured() if r.request.id in ids]
    finally:
        reader.close()


def stored_ids(url: str, kind: str) -> dict[int, str]:
    with psycopg.connect(url) as db:
        rows = db.execute("SELECT seq, id FROM events WHERE event = %s", (kind,)).fetchall()
    return {int(seq): str(event_id) for seq, event_id in rows}


def test_two_replicas_forward_each_event_once_and_a_killed_ones_claims_pass_on(
    prefect_server: PrefectServer, tmp_path: Path, postgres_url: str
) -> None:
    setup = Workspace(postgres_url)  # the schema, so that the audit can watch the outbox
    slug = setup.create_webhook("fwd", TEMPLATE).slug
    setup.close()
    with psycopg.connect(postgres_url, autocommit=True) as db:
        db.execute(AUDIT)
    env = {"PREFECT_API_AUTH_STRING": AUTH, "HOOKLAB_OUTBOX_LEASE": str(LEASE)}
    forward = ("--forward-to", prefect_server.url)
    db = psycopg.connect(postgres_url, autocommit=True)
    try:
        with replicas(tmp_path, postgres_url, 2, *forward, env=env) as (one, two):
            # Both healthy: every event reaches Prefect, each claimed and delivered once.
            statuses = [send((one, two)[n % 2], slug, "replica.healthy", n) for n in range(60)]
            assert statuses == [204] * 60
            healthy = stored_ids(postgres_url, "replica.healthy")
            assert len(healthy) == 60
            in_prefect = prefect_server.wait_for_events("replica.healthy", 60, timeout=60)
            assert sorted(in_prefect) == sorted(healthy.values())
            seconds_until(lambda: not db.execute("SELECT 1 FROM outbox").fetchall(), 30)
            audit = db.execute("SELECT seq, claimer, what FROM audit").fetchall()
            claimers = {
                seq: {c for s, c, w in audit if s == seq and w == "claimed"} for seq in healthy
            }
            assert [seq for seq, who in claimers.items() if len(who) != 1] == []
            deliveries = Counter(seq for seq, _, what in audit if what == "delivered")
            assert {seq: deliveries[seq] for seq in healthy} == {seq: 1 for seq in healthy}

            # Under load, one replica's forwarding process is frozen while it holds claims,
            # then the replica is killed outright, claims in hand.
            stop = threading.Event()
            targets = [one, two]
            acked: list[int] = []

            def load() -> None:
                n = 0
                while not stop.is_set():
                    n += 1
                    try:
                        if send(targets[n % len(targets)], slug, "replica.kill", n) == 204:
                            acked.append(n)
                    except (OSError, http.client.HTTPException):
                        pass  # sent to the replica as it was killed
                    time.sleep(0.005)

            loader = threading.Thread(target=load, daemon=True)
            loader.start()
            # The other's forwarder waits meanwhile, so that this one takes the new events.
            child, other = forwarding_child(one), forwarding_child(two)
            os.kill(other, signal.SIGSTOP)
            deadline = time.monotonic() + 60
            held: list[int] = []
            while not held:
                assert time.monotonic() < deadline, "the replica never held a claim"
                os.kill(child, signal.SIGSTOP)
                held = held_by(db, child)
                if not held:
                    os.kill(child, signal.SIGCONT)
                    time.sleep(0.01)
            targets.remove(one)
            one.kill()
            os.kill(other, signal.SIGCONT)
            time.sleep(0.5)
            stop.set()
            loader.join(timeout=30)
            assert not loader.is_alive()

            kill_ids = stored_ids(postgres_url, "replica.kill")
            numbers = {
                json.loads(r.request.body)["n"] for r in captured(postgres_url, "replica.kill")
            }
            assert set(acked) <= numbers and set(held) <= set(kill_ids)
            in_prefect = prefect_server.wait_for_events("replica.kill", len(kill_ids), timeout=90)
            assert sorted(in_prefect) == sorted(kill_ids.values())
            seconds_until(lambda: not db.execute("SELECT 1 FROM outbox").fetchall(), 30)
            waited = db.execute(
                "SELECT extract(epoch FROM min(a.at) FILTER (WHERE a.claimer NOT LIKE %(dead)s)"
                " - max(a.at) FILTER (WHERE a.claimer LIKE %(dead)s)) FROM audit a"
                " WHERE a.what = 'claimed' AND a.seq = ANY(%(held)s)",
                {"dead": f"%:{child}:%", "held": held},
            ).fetchone()
            assert waited is not None and float(waited[0]) >= LEASE - 0.1
            rows = db.execute(
                "SELECT seq, claimer FROM audit WHERE what = 'delivered' AND seq = ANY(%s)",
                (held,),
            ).fetchall()
            assert sorted(int(seq) for seq, _ in rows) == held
            assert {str(c).split(":")[1] for _, c in rows} == {str(other)}

            # `hooklab forward status` shows the same figures from either replica's home.
            shown = [
                run_cli(
                    base_env(),
                    "forward",
                    "status",
                    "-o",
                    "json",
                    "--store",
                    postgres_url,
                    "--home",
                    str(replica.home),
                )
                for replica in (one, two)
            ]
            assert [s.returncode for s in shown] == [0, 0], [s.stderr for s in shown]
            figures = [json.loads(s.stdout) for s in shown]
            assert figures[0] == figures[1]
            [status] = figures[0]
            assert (status["pending"], status["delivered"]) == (0, 60 + len(kill_ids))
    finally:
        db.close()
