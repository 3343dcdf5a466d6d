"""Several `hooklab serve` on one PostgreSQL store, as real processes over real sockets: each
answers every webhook, a change made through one holds on the other within a second, a stopped
PostgreSQL is a quick 503 told once, and a `kill -9` under load loses nothing acknowledged."""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

from kernel_support import fresh_kernel
from pg_support import PostgresCluster
from replica_support import FORM, Replica, api, call, post, replicas, seconds_until

from hooklab.core.examples import DYNAMIC_TEMPLATE as SEED
from hooklab.workspace import Workspace


def test_each_replica_answers_and_a_third_reader_sees_both(
    tmp_path: Path, postgres_url: str
) -> None:
    made = Workspace(postgres_url)
    slug = made.create_webhook("models", SEED).slug
    made.close()
    with replicas(tmp_path, postgres_url) as (one, two):
        statuses = [
            post(
                replica.base,
                slug,
                f"model={replica.home.name}-{n}&friendly_name=F".encode(),
            )
            for n in range(3)
            for replica in (one, two)
        ]
        assert statuses == [204] * 6
    reader = Workspace(postgres_url)
    try:
        bodies = sorted(stored.request.body.decode() for stored in reader.captured())
        assert bodies == sorted(
            f"model=home{r}-{n}&friendly_name=F" for r in (0, 1) for n in range(3)
        )
        assert sorted(reader.events()["resource.id"]) == (
            sorted(f"product.models.home{r}-{n}" for r in (0, 1) for n in range(3))
        )
    finally:
        reader.close()


def test_a_change_through_one_replica_holds_on_the_other_within_a_second(
    tmp_path: Path, postgres_url: str
) -> None:
    with replicas(tmp_path, postgres_url) as (one, two):
        hook = api(one.base, "POST", "/webhooks/", {"name": "models", "template": SEED})
        took = seconds_until(lambda: post(two.base, hook["slug"]) == 204)  # the other knows it
        assert took < 1.0
        rotated = api(one.base, "POST", f"/webhooks/{hook['id']}/rotate")
        took = seconds_until(lambda: post(two.base, rotated["slug"]) == 204)
        assert post(two.base, hook["slug"]) == 404
        assert took < 1.0

        account = api(one.base, "POST", "/service_accounts/", {"name": "ci"})
        guarded = api(
            one.base,
            "POST",
            "/webhooks/",
            {"name": "guarded", "template": SEED, "service_account_id": account["id"]},
        )
        key = account["api_key"]
        took = seconds_until(lambda: post(two.base, guarded["slug"], key=key) == 204)
        assert took < 1.0
        assert post(two.base, guarded["slug"]) == 401

        assert post(two.base, rotated["slug"]) == 204
        api(one.base, "PUT", "/settings/enforcement", {"enabled": True})
        took = seconds_until(lambda: post(two.base, rotated["slug"]) != 204)
        assert took < 1.0
        assert post(two.base, guarded["slug"], key=key) == 204  # it names an account: still on


def test_health_and_a_stopped_postgres_are_a_quick_503_told_once(
    tmp_path: Path, postgres_cluster: PostgresCluster, postgres_url: str
) -> None:
    with replicas(tmp_path, postgres_url, count=1) as (server,):
        hook = api(server.base, "POST", "/webhooks/", {"name": "models", "template": SEED})
        status, headers, body = call(server.base, "GET", "/health")
        assert (status, json.loads(body)) == (200, {"store": "ok"})
        assert post(server.base, hook["slug"]) == 204

        postgres_cluster.stop()
        try:
            status, headers, body = call(server.base, "GET", "/health")
            assert status == 503 and json.loads(body) == {"store": "unavailable"}
            answers = []
            for n in range(5):
                started = time.monotonic()
                status, headers, _ = call(
                    server.base,
                    "POST",
                    f"/hooks/{hook['slug']}",
                    f"model=down{n}".encode(),
                    **{"Content-Type": FORM},
                )
                answers.append((status, headers.get("Retry-After"), time.monotonic() - started < 5))
            assert answers == [(503, "5", True)] * 5
        finally:
            postgres_cluster.start()

        took = seconds_until(lambda: post(server.base, hook["slug"], b"model=back") == 204, 30)
        assert took < 30
        assert call(server.base, "GET", "/health")[0] == 200
        assert server.stop() == 0
    said = server.said().splitlines()
    why = [line for line in said if "could not be stored" in line]
    back = [line for line in said if "storing requests again" in line]
    assert len(why) == 1, said
    assert len(back) == 1, said
    assert "answered 503" in back[0]
    reader = Workspace(postgres_url)
    try:
        bodies = [stored.request.body for stored in reader.captured()]
    finally:
        reader.close()
    assert bodies[0] == b"model=m&friendly_name=M" and bodies[-1] == b"model=back"
    assert not any(body.startswith(b"model=down") for body in bodies)  # refused, not stored


def test_kill_9_of_a_replica_under_load_loses_nothing_and_doubles_nothing(
    tmp_path: Path, durable_postgres_url: str
) -> None:
    with replicas(tmp_path, durable_postgres_url) as (one, two):
        hook = api(one.base, "POST", "/webhooks/", {"name": "models", "template": SEED})
        acked: list[str] = []
        numbers = iter(range(10**9))
        lock = threading.Lock()
        stop = threading.Event()

        def sender(replica: Replica) -> None:
            connection = http.client.HTTPConnection("127.0.0.1", replica.port, timeout=10)
            while not stop.is_set():
                with lock:
                    number = f"n{next(numbers)}"
                body = f"model={number}&friendly_name=load".encode()
                try:
                    connection.request(
                        "POST", f"/hooks/{hook['slug']}", body, {"Content-Type": FORM}
                    )
                    response = connection.getresponse()
                    response.read()
                except (OSError, http.client.HTTPException):
                    connection.close()  # the replica is gone: try again on a new connection
                    time.sleep(0.02)
                    continue
                if response.status == 204:
                    with lock:
                        acked.append(number)
            connection.close()

        threads = [
            threading.Thread(target=sender, args=(replica,), daemon=True)
            for replica in (one, two)
            for _ in range(4)
        ]
        for thread in threads:
            thread.start()
        seconds_until(lambda: len(acked) >= 300, 60)
        assert one.stop(signal.SIGKILL) == -signal.SIGKILL  # mid-stream
        before = len(acked)
        seconds_until(lambda: len(acked) >= before + 100, 60)  # the other goes on
        one.start()
        assert post(one.base, hook["slug"], b"model=again&friendly_name=F") == 204
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
        assert not any(thread.is_alive() for thread in threads)

    reader = Workspace(durable_postgres_url)
    try:
        stored = Counter(
            stored.request.body.decode().split("&")[0].removeprefix("model=")
            for stored in reader.captured()
        )
    finally:
        reader.close()
    assert [number for number in acked if stored[number] == 0] == []  # nothing acknowledged lost
    assert [number for number, times in stored.items() if times > 1] == []  # nothing twice
    assert stored["again"] == 1


def test_a_notebook_on_the_store_follows_what_a_replica_stores(
    tmp_path: Path, postgres_url: str
) -> None:
    with replicas(tmp_path, postgres_url, count=1) as (server,), fresh_kernel() as kernel:
        hook = api(server.base, "POST", "/webhooks/", {"name": "models", "template": SEED})
        kernel.run(
            f"%load_ext hooklab\n%config HooklabMagics.home = {str(tmp_path / 'nb')!r}\n"
            f"%config HooklabMagics.store = {postgres_url!r}"
        )
        shown = kernel.run(
            "from hooklab.notebook.widgets import EventFeed\n"
            "feed = EventFeed(webhook='models')\nprint(feed.received)"
        )
        assert shown.strip() == "0"
        assert post(server.base, hook["slug"], b"model=seen&friendly_name=F") == 204
        took = seconds_until(lambda: kernel.run("print(feed.received)").strip() == "1")
        assert took < 1.0
        assert kernel.run("print('product.models.seen' in feed.table.value)").strip() == "True"
        listed = kernel.run("frame = %hooklab events models\nprint(frame['resource.id'].tolist())")
        assert listed.strip() == "['product.models.seen']"


def test_a_lease_that_is_not_a_number_of_seconds_stops_serve_with_one_line(
    tmp_path: Path, postgres_url: str
) -> None:
    for value in ("soon", "0", "-5"):
        refused = subprocess.run(
            [sys.executable, "-m", "hooklab.server", "--port", "0", "--store", postgres_url],
            env={**os.environ, "HOOKLAB_OUTBOX_LEASE": value, "HOOKLAB_HOME": str(tmp_path)},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert (refused.returncode, refused.stdout) == (2, "")
        assert refused.stderr.splitlines() == [
            "hooklab: cannot use the store: HOOKLAB_OUTBOX_LEASE must be a positive number of "
            f"seconds, not {value!r}"
        ]


def test_a_command_on_a_replicas_home_without_store_names_the_store_it_forgot(
    tmp_path: Path, postgres_url: str
) -> None:
    """Not an empty SQLite store made beside a server that serves the home from PostgreSQL."""
    with replicas(tmp_path, postgres_url, 1) as (one,):
        env = {k: v for k, v in os.environ.items() if not k.startswith("HOOKLAB_")}
        command = [sys.executable, "-m", "hooklab", "webhook", "ls", "--home", str(one.home)]
        forgot = subprocess.run(command, capture_output=True, text=True, env=env, timeout=60)
        assert forgot.returncode == 2
        [line] = forgot.stderr.splitlines()
        assert f"{one.home} is served from postgresql://" in line
        assert "pass --store URL or set HOOKLAB_STORE" in line
        assert not (one.home / "hooklab.db").exists()
        named = subprocess.run(
            [*command, "--store", postgres_url], capture_output=True, text=True, env=env, timeout=60
        )
        assert named.returncode == 0, named.stderr
    # Stopped, the home still remembers which store it was served from.
    forgot = subprocess.run(command, capture_output=True, text=True, env=env, timeout=60)
    assert forgot.returncode == 2
