"""`hooklab serve` on a PostgreSQL that accepts and never answers (frozen, or cut off behind a
live TCP peer): a management API call that waits for the store keeps only itself waiting, and
`/health` answers 503 within its own budget, one check shared by every caller."""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pg_support import FreezingProxy, PostgresCluster
from replica_support import ADMIN, FORM, Replica, api, call, replicas

from hooklab.core.examples import DYNAMIC_TEMPLATE as SEED
from hooklab.server.health import TIMEOUT

SOON = 1.0  # seconds: what "answers at once" means here, on a busy machine
KEY = f"Bearer {ADMIN}"


@pytest.fixture
def proxy(postgres_cluster: PostgresCluster) -> Iterator[FreezingProxy]:
    relay = FreezingProxy(postgres_cluster.port)
    yield relay
    relay.frozen.clear()
    relay.close()


@pytest.fixture
def server(tmp_path: Path, proxy: FreezingProxy, postgres_url: str) -> Iterator[Replica]:
    with replicas(tmp_path, proxy.url(postgres_url), count=1) as (replica,):
        assert call(replica.base, "GET", "/health")[0] == 200
        yield replica
        proxy.frozen.clear()


def timed(base: str, method: str, path: str, body: bytes | None = None) -> tuple[int, float]:
    started = time.monotonic()
    status = call(base, method, path, body, **{"Content-Type": FORM})[0]
    return status, time.monotonic() - started


def test_an_api_call_waiting_for_a_frozen_store_keeps_only_itself_waiting(
    server: Replica, proxy: FreezingProxy
) -> None:
    hook = api(server.base, "POST", "/webhooks/", {"name": "models", "template": SEED})
    proxy.frozen.set()
    waiting: list[tuple[int, bytes]] = []

    def read_webhook() -> None:  # waits for the store's own bound (10 s): longer than `call`
        connection = http.client.HTTPConnection(server.base.removeprefix("http://"), timeout=60)
        connection.request("GET", f"/api/webhooks/{hook['id']}", headers={"Authorization": KEY})
        response = connection.getresponse()
        waiting.append((response.status, response.read()))
        connection.close()

    caller = threading.Thread(target=read_webhook, daemon=True)
    caller.start()
    time.sleep(0.5)  # the API call is now waiting for the store
    assert caller.is_alive()
    unknown, took = timed(server.base, "POST", "/hooks/no-such-slug", b"model=m")
    assert (unknown, took < SOON) == (404, True), took
    health, took = timed(server.base, "GET", "/health")
    assert (health, took < TIMEOUT + SOON) == (503, True), took
    caller.join(30)
    assert not caller.is_alive()
    [(status, body)] = waiting
    assert status == 503 and "did not answer" in json.loads(body)["detail"]
    proxy.frozen.clear()
    assert api(server.base, "GET", f"/webhooks/{hook['id']}")["name"] == "models"


def test_health_answers_within_its_budget_and_callers_share_one_check(
    server: Replica, proxy: FreezingProxy
) -> None:
    proxy.frozen.set()
    before = proxy.accepted
    answers: list[tuple[int, float]] = []

    def health() -> None:
        answers.append(timed(server.base, "GET", "/health"))

    callers = [threading.Thread(target=health, daemon=True) for _ in range(20)]
    for caller in callers:
        caller.start()
        time.sleep(0.05)
    for caller in callers:
        caller.join(30)
    assert len(answers) == 20
    assert {status for status, _ in answers} == {503}
    assert max(took for _, took in answers) < TIMEOUT + SOON, answers
    # One check in flight at a time: at most one new connection to the store meanwhile.
    assert proxy.accepted - before <= 1
    proxy.frozen.clear()
    deadline = time.monotonic() + 30
    while call(server.base, "GET", "/health")[0] != 200:
        assert time.monotonic() < deadline, "never healthy again"
        time.sleep(0.2)


def test_a_store_that_stops_answering_as_serve_starts_holds_no_request_nor_stops_it(
    tmp_path: Path, postgres_cluster: PostgresCluster, postgres_url: str
) -> None:
    # Frozen at the list of webhooks that `hooklab serve` shows once it serves.
    proxy = FreezingProxy(postgres_cluster.port, freeze_on=b"ORDER BY created, name")
    try:
        with replicas(tmp_path, proxy.url(postgres_url), count=1) as (server,):
            unknown, took = timed(server.base, "POST", "/hooks/no-such-slug", b"model=m")
            assert (unknown, took < SOON) == (404, True), took
            health, took = timed(server.base, "GET", "/health")
            assert (health, took < TIMEOUT + SOON) == (503, True), took
            time.sleep(12)  # the list has failed by now: the server goes on, and says why
            proxy.frozen.clear()
            deadline = time.monotonic() + 30
            while call(server.base, "GET", "/health")[0] != 200:
                assert time.monotonic() < deadline, server.said()
                time.sleep(0.2)
            assert server.stop() == 0
        said = server.said()
        assert "Traceback" not in said
        assert "cannot list the webhooks" in said and "did not answer" in said
    finally:
        proxy.frozen.clear()
        proxy.close()
