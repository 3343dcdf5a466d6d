"""What only the PostgreSQL store does: several processes on one database, claims with
leases, a feed that misses no late commit, and one-line errors that never show a password."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cli_support import base_env
from pg_support import FreezingProxy, PostgresCluster, Role

from hooklab import HookRequest, Workspace
from hooklab.core.errors import StoreError, StoreUnavailable
from hooklab.store import pg_connect
from hooklab.store.pg_outbox import PostgresOutbox

TEMPLATE = '{"event": "model.{{ body.model }}", "resource": {"prefect.resource.id": "m"}}'
URL = "http://127.0.0.1:4200/api"


@pytest.fixture
def pg(postgres_url: str) -> Iterator[Workspace]:
    ws = Workspace(postgres_url)
    yield ws
    ws.close()


def post(model: str) -> HookRequest:
    return HookRequest.fake(method="POST", form={"model": model})


def test_two_forwarders_never_claim_the_same_event(pg: Workspace) -> None:
    hook = pg.create_webhook("models", TEMPLATE)
    pg.forward_to(URL)
    for n in range(40):
        pg.receive(hook.slug, post(str(n)))
    first, second = pg.outbox(), pg.outbox()
    try:
        taken: list[list[str]] = [[], []]
        for _ in range(5):
            for outbox, ids in zip((first, second), taken, strict=True):
                batch = outbox.next_batch(URL, limit=5, max_bytes=10**6, after=None)
                if batch is not None:
                    ids.extend(batch.ids)
                    outbox.delivered(URL, batch)
        assert taken[0] and taken[1]
        assert not set(taken[0]) & set(taken[1])
        assert len(taken[0]) + len(taken[1]) == 40
        [state] = pg.forwarding()
        assert (state.pending, state.delivered) == (0, 40)
    finally:
        first.close()
        second.close()


def test_the_claims_of_a_forwarder_that_died_are_taken_over_when_its_lease_ends(
    pg: Workspace,
) -> None:
    hook = pg.create_webhook("models", TEMPLATE)
    pg.forward_to(URL)
    for n in range(3):
        pg.receive(hook.slug, post(str(n)))
    dead = pg.outbox()
    assert isinstance(dead, PostgresOutbox)
    claimed = dead.next_batch(URL, limit=10, max_bytes=10**6)
    assert claimed is not None and len(claimed) == 3
    dead._db.close()  # killed: its claims stay, with their lease
    alive = pg.outbox()
    assert isinstance(alive, PostgresOutbox)
    try:
        assert alive.next_batch(URL, limit=10, max_bytes=10**6) is None
        with alive._db.cursor() as cursor:  # let the lease run out now
            cursor.execute("UPDATE outbox SET claimed_until = now() - interval '1 s'")
        taken = alive.next_batch(URL, limit=10, max_bytes=10**6)
        assert taken is not None and taken.ids == claimed.ids
    finally:
        alive.close()


def test_a_clean_stop_gives_back_its_claims(pg: Workspace) -> None:
    hook = pg.create_webhook("models", TEMPLATE)
    pg.forward_to(URL)
    pg.receive(hook.slug, post("a"))
    leaving = pg.outbox()
    assert leaving.next_batch(URL, limit=10, max_bytes=10**6) is not None
    leaving.close()
    staying = pg.outbox()
    try:
        assert staying.next_batch(URL, limit=10, max_bytes=10**6) is not None
    finally:
        staying.close()


def test_the_feed_sees_an_event_that_commits_after_a_newer_one(
    pg: Workspace, postgres_cluster: PostgresCluster, postgres_url: str
) -> None:
    hook = pg.create_webhook("models", TEMPLATE)
    before = pg.feed(0).position
    slow = Workspace(postgres_url)
    slow_outcome = slow.process(hook.slug, post("slow"))
    started, release = threading.Event(), threading.Event()
    store = slow.store
    assert hasattr(store, "transaction")

    def write_slowly() -> None:
        with store.transaction() as db:  # takes its numbers first, commits last
            db.execute("SELECT 1")
            from hooklab.store import rows

            requests, events = rows.outcome_rows([slow_outcome], lambda t: t, bool)
            marks = ", ".join(["%s"] * 12)
            db.execute(f"INSERT INTO requests ({rows.REQUEST_COLUMNS}) VALUES ({marks})",
                       requests[0])  # fmt: skip
            db.execute(f"INSERT INTO events ({rows.EVENT_INSERT_COLUMNS}) VALUES ({marks})",
                       events[0])  # fmt: skip
            started.set()
            release.wait(10)

    writer = threading.Thread(target=write_slowly)
    writer.start()
    try:
        assert started.wait(10)
        pg.receive(hook.slug, post("fast"))  # a newer event, committed first
        seen = pg.feed(before)
        assert [row.event for row in seen.rows] == []  # held back: an older one is in flight
        release.set()
        writer.join(10)
        after = pg.feed(seen.position)
        assert sorted(row.event for row in after.rows) == ["model.fast", "model.slow"]
        assert pg.feed(after.position).count == 0
    finally:
        release.set()
        writer.join(10)
        slow.close()


def test_an_unreachable_store_is_one_line_naming_the_host_never_the_password(
    postgres_cluster: PostgresCluster,
) -> None:
    url = f"postgresql://someone:s3cret-pw@127.0.0.1:{postgres_cluster.port + 1}/nowhere"
    with pytest.raises(StoreUnavailable) as caught:
        Workspace(url)
    line = str(caught.value)
    assert "\n" not in line and "s3cret-pw" not in line
    assert line.startswith(f"postgresql://someone@127.0.0.1:{postgres_cluster.port + 1}/nowhere")
    assert "refused" in line.lower()


def test_a_refused_password_is_one_line_without_the_password(
    postgres_role: Callable[..., Role],
) -> None:
    role = postgres_role(password="the-right-one")
    wrong = role.url.replace("the-right-one", "a-wrong-one")
    with pytest.raises(StoreError) as caught:
        Workspace(wrong)
    line = str(caught.value)
    assert "password authentication failed" in line
    assert "a-wrong-one" not in line and "the-right-one" not in line and "\n" not in line


def test_a_database_without_rights_is_refused_and_left_without_half_a_schema(
    postgres_role: Callable[..., Role], postgres_cluster: PostgresCluster, postgres_url: str
) -> None:
    role = postgres_role()
    with pytest.raises(StoreError) as caught:
        Workspace(role.url)
    assert "no rights to make hooklab's tables" in str(caught.value)
    assert role.password not in str(caught.value)
    database = postgres_url.rsplit("/", 1)[1]
    with postgres_cluster.connect(database) as db:
        tables = db.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").fetchone()
    assert tables == (0,)


def test_a_server_older_than_14_is_refused_in_one_line(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pg_connect, "OLDEST", 10**7)  # as if this server were too old
    with pytest.raises(StoreError, match=r"PostgreSQL \d+ is too old; hooklab needs 14 or later"):
        Workspace(postgres_url)


def test_the_command_line_says_it_in_one_line_and_exits_2(
    postgres_cluster: PostgresCluster,
) -> None:
    url = f"postgresql://someone:s3cret-pw@127.0.0.1:{postgres_cluster.port + 1}/nowhere"
    done = subprocess.run(
        [sys.executable, "-m", "hooklab", "events", "--store", url],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert done.stdout == ""
    [line] = done.stderr.splitlines()
    assert line.startswith("hooklab: cannot use the store: postgresql://someone@127.0.0.1:")
    assert "s3cret-pw" not in line


def test_without_the_driver_a_postgresql_url_names_the_extra_to_install(
    postgres_url: str,
) -> None:
    code = (
        "import sys; sys.modules['psycopg'] = None\n"
        "from hooklab import Workspace\n"
        f"Workspace({postgres_url!r})\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert "postgres extra" in done.stderr.splitlines()[-1]
    assert "pip install '.[postgres]'" in done.stderr.splitlines()[-1]


def test_a_stopped_store_refuses_at_once_and_is_used_again_when_it_is_back(
    pg: Workspace, postgres_cluster: PostgresCluster
) -> None:
    hook = pg.create_webhook("models", TEMPLATE)
    postgres_cluster.stop()
    try:
        with pytest.raises(StoreUnavailable):
            pg.receive(hook.slug, post("while down"))
    finally:
        postgres_cluster.start()
    assert pg.receive(hook.slug, post("back")).status == 204
    assert pg.events()["event"].tolist() == ["model.back"]


def test_reads_and_the_outbox_carry_on_after_the_store_restarts(
    pg: Workspace, postgres_cluster: PostgresCluster
) -> None:
    pg.forward_to(URL)
    outbox = pg.outbox()
    try:
        postgres_cluster.stop()
        postgres_cluster.start()
        assert outbox.urls() == [URL]
        assert [d.url for d in pg.forwarding()] == [URL]
        assert pg.list_webhooks() == []
    finally:
        outbox.close()


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://someone:s3cret%pw@127.0.0.1:1/db",  # a bare % in the password
        "postgresql://someone:s3cret pw@127.0.0.1:1/db",  # a space
        "postgresql://someone:s3c@ret pw@127.0.0.1:1/db",  # an @ left unencoded
        "postgresql://someone:s3@cret:w/rd#1@127.0.0.1:1/db",  # one that would parse, wrongly
        "postgresql://someone@127.0.0.1:1/db?password=s3cret%pw",
    ],
)
def test_a_url_that_does_not_parse_never_shows_its_password(url: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "hooklab", "events", "--store", url],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    [line] = done.stderr.splitlines()
    assert line.startswith("hooklab: cannot use the store: not a PostgreSQL URL: ")
    for part in ("s3cret", "ret pw", "pw@", "cret:w", "w/rd", "rd#1"):
        assert part not in line


def test_a_store_that_stops_answering_is_refused_in_time_not_waited_on_forever(
    postgres_cluster: PostgresCluster, postgres_url: str
) -> None:
    proxy = FreezingProxy(postgres_cluster.port)
    url = proxy.url(postgres_url)
    ws = Workspace(url)
    outbox = ws.outbox()
    try:
        ws.create_webhook("models", TEMPLATE)
        ws.forward_to(URL)
        proxy.frozen.set()
        caught: list[BaseException] = []

        took: list[float] = []
        started = time.monotonic()

        def call(read: Callable[[], object]) -> None:
            try:
                read()
            except BaseException as exc:
                caught.append(exc)
            took.append(time.monotonic() - started)

        # What the management API's threads and `hooklab serve`'s supervisor do. The three
        # waiting in turn for the same connection fail with the first, not 5 s apart.
        callers = [
            threading.Thread(target=call, args=(read,), daemon=True)
            for read in (ws.list_webhooks, ws.list_webhooks, ws.list_webhooks, outbox.urls)
        ]
        for caller in callers:
            caller.start()
        for caller in callers:
            caller.join(60)
        assert not any(caller.is_alive() for caller in callers), "still waiting after 60 s"
        assert len(caught) == 4 and all(isinstance(exc, StoreUnavailable) for exc in caught)
        assert all("did not answer within" in str(exc) for exc in caught)
        assert max(took) < pg_connect.ANSWER_TIMEOUT + 2, took
        proxy.frozen.clear()
        assert [hook.name for hook in ws.list_webhooks()] == ["models"]  # a new connection
        assert outbox.urls() == [URL]
    finally:
        proxy.frozen.clear()
        outbox.close()
        ws.close()
        proxy.close()


def test_serve_warns_once_when_the_password_stands_on_its_command_line(tmp_path: Path) -> None:
    url = "postgresql://someone:s3cret-pw@127.0.0.1:1/db"  # nothing listens: it stops at once

    def serve(*args: str, **env: str) -> list[str]:
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "hooklab",
                "serve",
                "--home",
                str(tmp_path),
                "--port",
                "0",
                *args,
            ],
            capture_output=True,
            text=True,
            timeout=120,
            env=base_env(**env),
        )
        assert done.returncode == 2 and "s3cret" not in done.stderr
        return [line for line in done.stderr.splitlines() if "process list" in line]

    [warning] = serve("--store", url)
    assert "PGPASSWORD" in warning and "HOOKLAB_STORE" in warning
    assert serve(HOOKLAB_STORE=url) == []  # the environment is the user's own
    assert serve("--store", url.replace(":s3cret-pw", "")) == []


def test_a_nul_in_a_templates_output_is_kept_as_on_sqlite_and_copied(
    pg: Workspace, tmp_path: Path
) -> None:
    template = '{"event": "x.{{ body.a }}", "resource": {"prefect.resource.id": "r"}}'
    answers = []
    for ws in (pg, Workspace(tmp_path / "hooklab.db")):
        hook = ws.create_webhook("nul", template)
        hostile = HookRequest.fake(method="POST", json={"a": "x\u0000y"})
        answers.append(ws.receive(hook.slug, hostile).status)
        assert ws.receive(hook.slug, post("after")).status == 204
    assert answers == [400, 400]  # refused as bad input on both, never "store unavailable"
    stored = pg.requests()
    assert stored["status"].tolist() == [400, 204]

    done = subprocess.run(
        [sys.executable, "-m", "hooklab", "store", "copy", str(tmp_path), pg.store_url],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert pg.requests()["status"].tolist() == [400, 204, 400, 204]  # the NUL copied too


def test_large_bodies_are_stored_compressed_with_lz4(
    pg: Workspace, postgres_cluster: PostgresCluster, postgres_url: str
) -> None:
    hook = pg.create_webhook("models", TEMPLATE)
    body = '{"model": "big", "padding": "' + "pushed to main " * 600 + '"}'
    outcome = pg.process(
        hook.slug,
        HookRequest.fake(method="POST", body=body, headers={"Content-Type": "application/json"}),
    )
    pg.store.record([outcome])
    with postgres_cluster.connect(postgres_url.rsplit("/", 1)[1]) as db:
        row = db.execute(
            "SELECT pg_column_compression(body), length(body) FROM requests"
        ).fetchone()
    assert row == ("lz4", len(body))
    # Opening the store again (another replica, a notebook) leaves it as it is.
    Workspace(postgres_url).close()


def test_a_forwarder_alive_but_slower_than_its_lease_keeps_its_claims(
    pg: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOOKLAB_OUTBOX_LEASE", "0.6")
    hook = pg.create_webhook("models", TEMPLATE)
    pg.forward_to(URL)
    for n in range(3):
        pg.receive(hook.slug, post(str(n)))
    slow, other = pg.outbox(), pg.outbox()
    try:
        claimed = slow.next_batch(URL, limit=10, max_bytes=10**6)
        assert claimed is not None and len(claimed) == 3
        time.sleep(2.0)  # three leases: a delivery to a slow Prefect, say
        assert other.next_batch(URL, limit=10, max_bytes=10**6) is None
        slow.delivered(URL, claimed)
        [state] = pg.forwarding()
        assert (state.pending, state.delivered) == (0, 3)
    finally:
        slow.close()
        other.close()


def test_a_role_that_only_reads_and_writes_hooklabs_tables_can_serve_from_them(
    pg: Workspace,
    postgres_role: Callable[..., Role],
    postgres_cluster: PostgresCluster,
    postgres_url: str,
) -> None:
    """The tables made by their owner (`pg`), a second role granted rights on their rows only,
    as a DBA may set it up."""
    hook = pg.create_webhook("models", TEMPLATE)
    role = postgres_role()
    with postgres_cluster.connect(postgres_url.rsplit("/", 1)[1]) as db:
        db.execute(f"GRANT USAGE ON SCHEMA public TO {role.name}")
        db.execute(
            f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role.name}"
        )
        db.execute(f"GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO {role.name}")
    served = Workspace(role.url)
    try:
        outcome = served.receive(hook.slug, post("from-a-plain-role"))
        assert outcome.status == 204
        assert pg.store.count("requests") == 1
    finally:
        served.close()
        with postgres_cluster.connect(postgres_url.rsplit("/", 1)[1]) as db:
            db.execute(f"DROP OWNED BY {role.name}")  # its grants, so that it can be dropped
