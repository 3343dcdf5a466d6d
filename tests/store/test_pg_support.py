"""The PostgreSQL the suite starts itself: a fresh database per test, an outage that keeps the
data, roles that are refused, and nothing left running after it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest
from pg_support import NOT_INSTALLED, PostgresCluster, Role, find_bindir


def tables(url: str) -> list[str]:
    with psycopg.connect(url) as db:
        rows = db.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1"
        ).fetchall()
    return [row[0] for row in rows]


def test_each_database_starts_empty_and_is_dropped_after(
    postgres_cluster: PostgresCluster, postgres_url: str
) -> None:
    assert postgres_url.startswith(f"postgresql://hooklab@127.0.0.1:{postgres_cluster.port}/")
    assert tables(postgres_url) == []
    with psycopg.connect(postgres_url) as db:
        db.execute("CREATE TABLE kept (n int)")

    with postgres_cluster.database() as other:
        assert other != postgres_url
        assert tables(other) == []  # what one test made, the next does not see
    with postgres_cluster.connect() as db:
        names = [row[0] for row in db.execute("SELECT datname FROM pg_database").fetchall()]
    assert other.rsplit("/", 1)[1] not in names
    assert postgres_url.rsplit("/", 1)[1] in names


def test_stop_and_start_keep_the_data_and_the_port(
    postgres_cluster: PostgresCluster, postgres_url: str
) -> None:
    with psycopg.connect(postgres_url) as db:
        db.execute("CREATE TABLE kept (n int)")
        db.execute("INSERT INTO kept VALUES (1), (2)")
    port = postgres_cluster.port

    postgres_cluster.stop()
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(postgres_url, connect_timeout=2)
    postgres_cluster.start()

    assert postgres_cluster.port == port
    with psycopg.connect(postgres_url) as db:
        assert db.execute("SELECT n FROM kept ORDER BY n").fetchall() == [(1,), (2,)]


def test_an_immediate_stop_of_the_durable_cluster_loses_nothing_committed(
    durable_postgres_cluster: PostgresCluster, durable_postgres_url: str
) -> None:
    with psycopg.connect(durable_postgres_url) as db:
        db.execute("CREATE TABLE kept (n int)")
        db.execute("INSERT INTO kept VALUES (1)")
    # A crash: no checkpoint, the WAL is replayed on start. (The fast cluster, whose commits
    # return before their WAL is written, would lose the last ones here.)
    durable_postgres_cluster.stop(mode="immediate")
    durable_postgres_cluster.start()
    with psycopg.connect(durable_postgres_url) as db:
        assert db.execute("SELECT n FROM kept").fetchall() == [(1,)]


def test_a_role_with_a_password_is_refused_without_it(
    postgres_cluster: PostgresCluster, postgres_role: Callable[..., Role]
) -> None:
    role = postgres_role(password="right horse")
    database = role.url.rsplit("/", 1)[1]
    for wrong in ("", "wrong"):
        refused = "no password supplied|password authentication failed"
        with pytest.raises(psycopg.OperationalError, match=refused):
            psycopg.connect(postgres_cluster.url(database, role.name, wrong), connect_timeout=2)
    with psycopg.connect(role.url) as db:
        assert db.execute("SELECT current_user").fetchone() == (role.name,)


def test_a_role_without_rights_connects_but_cannot_create_a_table(
    postgres_role: Callable[..., Role],
) -> None:
    role = postgres_role()
    with psycopg.connect(role.url) as db, pytest.raises(psycopg.errors.InsufficientPrivilege):
        db.execute("CREATE TABLE t (n int)")


def test_the_durable_cluster_syncs_and_the_other_does_not(
    postgres_url: str, durable_postgres_url: str
) -> None:
    def setting(url: str, name: str) -> object:
        with psycopg.connect(url) as db:
            row = db.execute(f"SHOW {name}").fetchone()
        return None if row is None else row[0]

    assert [setting(durable_postgres_url, n) for n in ("fsync", "synchronous_commit")] == [
        "on",
        "on",
    ]
    assert [setting(postgres_url, n) for n in ("fsync", "synchronous_commit")] == ["off", "off"]


def processes_of(folder: Path) -> list[str]:
    """Command lines of every process that names `folder` (the postmaster and runuser do)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if entry.name.isdigit() and str(folder) in command:
            found.append(command)
    return found


def test_close_leaves_no_server_running_and_no_folder() -> None:
    bindir = find_bindir()
    if bindir is None:
        pytest.skip(NOT_INSTALLED)
    cluster = PostgresCluster(bindir).start()
    client = cluster.connect()  # still connected when the cluster closes
    row = client.execute("SELECT pg_backend_pid()").fetchone()
    assert row is not None and processes_of(cluster.folder)
    cluster.close()
    assert processes_of(cluster.folder) == []
    assert not Path(f"/proc/{row[0]}").exists()  # the session's backend is gone too
    assert not cluster.folder.exists()
    client.close()
