"""Which PostgreSQL driver the store should write with: psycopg 3's async connection, psycopg 3's
sync connection in a thread, and asyncpg, each on a Tornado loop as the receiver runs one.

The write is the receiver's group commit: a batch of requests, each with its event, in one
transaction, and the next batch only once that one has committed (one batch in flight). A row
is a request (a few short texts, headers as JSON text, a timestamptz, a bytea body) and its
event (texts, two timestamptz, a payload of about 1 KB of JSON text), in the two tables with
the indexes hooklab's SQLite schema has.

- psycopg-async: `AsyncConnection`; BEGIN, an `executemany` a table and COMMIT in one pipeline.
- psycopg-thread: the same on a sync `Connection`, run by one worker thread that the loop
  awaits (`IOLoop.run_in_executor`).
- asyncpg: an `executemany` a table inside `conn.transaction()`.
- psycopg-async-unnest and asyncpg-unnest: one statement a table instead, the batch's columns
  sent as arrays (`INSERT ... SELECT * FROM unnest($1::text[], ...)`), binary on both.

Printed, per batch size: rows per second and the client's CPU per row (its process, every
thread), with each as a ratio to psycopg async; and the server's CPU per row (its backend
process), which differs with what each driver sends. Each side of each round runs in a fresh
process on a fresh database of one throwaway cluster (fsync and synchronous commit off, so that
the drivers and not the disk set the pace); rounds alternate the order of the sides; the
figures are medians of the rounds. asyncpg is no dependency of hooklab: without it, its side is
skipped with a note (`pip install asyncpg` to measure it).

    .venv/bin/python benchmarks/bench_pg_driver.py [--rounds 3] [--batch 1 --batch 16 ...]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from tornado.ioloop import IOLoop

ROOT = Path(__file__).resolve().parent.parent
# The suite's own cluster helper: benchmarks may use the tests' support code, never hooklab.
sys.path.insert(0, str(ROOT / "tests"))

from pg_support import PostgresCluster, find_bindir  # noqa: E402

SIDES = ("psycopg-async", "psycopg-thread", "asyncpg", "psycopg-async-unnest", "asyncpg-unnest")
BASELINE = "psycopg-async"
BATCHES = (1, 16, 64)
# Rows written per timed run, by batch size: about a second or two each on this machine.
ROWS = {1: 2_000, 4: 6_000, 16: 16_000, 64: 32_000}
WARMUP_BATCHES = 50

SCHEMA = """
CREATE TABLE requests (
    seq bigserial PRIMARY KEY, id text NOT NULL UNIQUE, webhook_id text, method text NOT NULL,
    path text NOT NULL, query text NOT NULL, headers text NOT NULL, body bytea NOT NULL,
    received timestamptz NOT NULL, client text NOT NULL, status integer NOT NULL
);
CREATE INDEX requests_by_webhook ON requests (webhook_id, received);
CREATE TABLE events (
    seq bigserial PRIMARY KEY, id text NOT NULL, request_id text, webhook_id text,
    event text NOT NULL, occurred timestamptz NOT NULL, received timestamptz NOT NULL,
    resource text NOT NULL, related text NOT NULL, payload text NOT NULL, failed boolean NOT NULL
);
CREATE INDEX events_by_webhook ON events (webhook_id, received);
"""
REQUEST_COLUMNS = "id, webhook_id, method, path, query, headers, body, received, client, status"
EVENT_COLUMNS = (
    "id, request_id, webhook_id, event, occurred, received, resource, related, payload, failed"
)
# The columns' types, for the arrays of the one-statement inserts.
REQUEST_TYPES = ("text",) * 6 + ("bytea", "timestamptz", "text", "int4")
EVENT_TYPES = ("text",) * 4 + ("timestamptz", "timestamptz", "text", "text", "text", "bool")


def placeholders(count: int, style: str) -> str:
    return ", ".join("%s" if style == "psycopg" else f"${n}" for n in range(1, count + 1))


def inserts(style: str) -> tuple[str, str]:
    return (
        f"INSERT INTO requests ({REQUEST_COLUMNS}) VALUES ({placeholders(10, style)})",
        f"INSERT INTO events ({EVENT_COLUMNS}) VALUES ({placeholders(10, style)})",
    )


def unnest_inserts(style: str) -> tuple[str, str]:
    def insert(table: str, columns: str, types: Sequence[str]) -> str:
        marks = ["%b" if style == "psycopg" else f"${n}" for n in range(1, len(types) + 1)]
        arrays = ", ".join(f"{mark}::{kind}[]" for mark, kind in zip(marks, types, strict=True))
        return f"INSERT INTO {table} ({columns}) SELECT * FROM unnest({arrays})"

    return (
        insert("requests", REQUEST_COLUMNS, REQUEST_TYPES),
        insert("events", EVENT_COLUMNS, EVENT_TYPES),
    )


Row = tuple[tuple[Any, ...], tuple[Any, ...]]


def columns(rows: Sequence[tuple[Any, ...]]) -> list[list[Any]]:
    """Rows as one list a column: the arrays of a one-statement insert."""
    return [list(column) for column in zip(*rows, strict=True)]


def make_rows(count: int) -> list[Row]:
    """`count` requests and their events, as a GitHub push delivered to one webhook."""
    webhook = str(uuid.uuid4())
    start = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)
    headers = json.dumps(
        {"content-type": "application/json", "x-github-event": "push", "x-hub": "0" * 36}
    )
    rows = []
    for n in range(count):
        request_id, at = str(uuid.uuid4()), start + timedelta(milliseconds=n)
        body = json.dumps({"ref": "refs/heads/main", "n": n, "commits": ["x" * 40] * 12}).encode()
        commits = [{"id": f"{n:040d}", "message": "m" * 40}] * 8
        payload = json.dumps({"ref": "refs/heads/main", "n": n, "pusher": "me", "commits": commits})
        resource = json.dumps({"prefect.resource.id": f"github.repo.{n % 50}"})
        request = (request_id, webhook, "POST", "/hooks/abc", "", headers, body, at, "::1", 204)
        event_id = str(uuid.uuid4())
        event = (event_id, request_id, webhook, "github.push", at, at, resource, "[]", payload)
        rows.append((request, (*event, False)))
    return rows


def batches(rows: Sequence[Row], size: int) -> list[Sequence[Row]]:
    return [rows[i : i + size] for i in range(0, len(rows), size)]


# -- the three writers: each returns (write a batch, close, the server backend's pid) --------

Writer = tuple[Callable[[Sequence[Row]], Awaitable[None]], Callable[[], Awaitable[None]], int]


async def psycopg_async(url: str) -> Writer:
    import psycopg

    conn = await psycopg.AsyncConnection.connect(url, autocommit=True)
    to_requests, to_events = inserts("psycopg")

    async def write(batch: Sequence[Row]) -> None:
        async with conn.pipeline(), conn.transaction(), conn.cursor() as cursor:
            await cursor.executemany(to_requests, [request for request, _ in batch])
            await cursor.executemany(to_events, [event for _, event in batch])

    return write, conn.close, conn.info.backend_pid


async def psycopg_thread(url: str) -> Writer:
    import psycopg

    conn = psycopg.connect(url, autocommit=True)
    to_requests, to_events = inserts("psycopg")
    worker = ThreadPoolExecutor(max_workers=1)

    def write_now(batch: Sequence[Row]) -> None:
        with conn.pipeline(), conn.transaction(), conn.cursor() as cursor:
            cursor.executemany(to_requests, [request for request, _ in batch])
            cursor.executemany(to_events, [event for _, event in batch])

    async def write(batch: Sequence[Row]) -> None:
        await IOLoop.current().run_in_executor(worker, write_now, batch)

    async def close() -> None:
        worker.shutdown()
        conn.close()

    return write, close, conn.info.backend_pid


async def asyncpg_writer(url: str) -> Writer:
    import asyncpg

    conn = await asyncpg.connect(url)
    to_requests, to_events = inserts("asyncpg")

    async def write(batch: Sequence[Row]) -> None:
        async with conn.transaction():
            await conn.executemany(to_requests, [request for request, _ in batch])
            await conn.executemany(to_events, [event for _, event in batch])

    pid = await conn.fetchval("SELECT pg_backend_pid()")
    return write, conn.close, int(pid)


async def psycopg_async_unnest(url: str) -> Writer:
    import psycopg

    conn = await psycopg.AsyncConnection.connect(url, autocommit=True)
    to_requests, to_events = unnest_inserts("psycopg")

    async def write(batch: Sequence[Row]) -> None:
        async with conn.pipeline(), conn.transaction():
            await conn.execute(to_requests, columns([request for request, _ in batch]))
            await conn.execute(to_events, columns([event for _, event in batch]))

    return write, conn.close, conn.info.backend_pid


async def asyncpg_unnest(url: str) -> Writer:
    import asyncpg

    conn = await asyncpg.connect(url)
    to_requests, to_events = unnest_inserts("asyncpg")

    async def write(batch: Sequence[Row]) -> None:
        async with conn.transaction():
            await conn.execute(to_requests, *columns([request for request, _ in batch]))
            await conn.execute(to_events, *columns([event for _, event in batch]))

    pid = await conn.fetchval("SELECT pg_backend_pid()")
    return write, conn.close, int(pid)


WRITERS: dict[str, Callable[[str], Awaitable[Writer]]] = {
    "psycopg-async": psycopg_async,
    "psycopg-thread": psycopg_thread,
    "asyncpg": asyncpg_writer,
    "psycopg-async-unnest": psycopg_async_unnest,
    "asyncpg-unnest": asyncpg_unnest,
}


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process (the server's backend, here), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def one_side(side: str, url: str, size: int, count: int) -> dict[str, float]:
    """Warm up, then write `count` rows in batches of `size`, one batch in flight."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as db:
        db.execute(SCHEMA)
    warmup = make_rows(WARMUP_BATCHES * size)
    timed = batches(make_rows(count), size)
    write, close, backend = await WRITERS[side](url)
    for batch in batches(warmup, size):
        await write(batch)
    wall, cpu, server = time.perf_counter(), time.process_time(), cpu_seconds(backend)
    for batch in timed:
        await write(batch)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    server = cpu_seconds(backend) - server
    await close()
    return {"rows": count, "wall": wall, "cpu": cpu, "server": server}


def run_side(side: str, url: str, size: int, count: int) -> dict[str, float]:
    command = [sys.executable, __file__, "--side", side, "--url", url, "--batch", str(size)]
    done = subprocess.run(
        [*command, "--rows", str(count)], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"{side} failed:\n{done.stdout}{done.stderr}")
    found: dict[str, float] = json.loads(done.stdout)
    return found


def stored(cluster: PostgresCluster, url: str) -> tuple[int, int]:
    with cluster.connect(url.rsplit("/", 1)[1]) as db:
        row = db.execute("SELECT (SELECT count(*) FROM requests), (SELECT count(*) FROM events)")
        counts = row.fetchone()
    assert counts is not None
    return int(counts[0]), int(counts[1])


def race(cluster: PostgresCluster, sides: Sequence[str], size: int, rounds: int) -> None:
    count = ROWS.get(size, 16_000)
    runs: dict[str, list[dict[str, float]]] = {side: [] for side in sides}
    for round_ in range(rounds):
        order = list(sides[round_ % len(sides) :]) + list(sides[: round_ % len(sides)])
        for side in order:
            with cluster.database() as url:
                runs[side].append(run_side(side, url, size, count))
                expected = count + WARMUP_BATCHES * size
                assert stored(cluster, url) == (expected, expected), f"{side} lost rows"

    def median(side: str, figure: Callable[[dict[str, float]], float]) -> float:
        return statistics.median(figure(run) for run in runs[side])

    def per_round_ratio(side: str, figure: Callable[[dict[str, float]], float]) -> float:
        pairs = zip(runs[side], runs[BASELINE], strict=True)
        return statistics.median(figure(ours) / figure(base) for ours, base in pairs)

    def rate(run: dict[str, float]) -> float:
        return run["rows"] / run["wall"]

    def cpu(run: dict[str, float]) -> float:
        return run["cpu"] / run["rows"]

    def server(run: dict[str, float]) -> float:
        return run["server"] / run["rows"]

    print(f"batches of {size} rows (a request and its event each), {count:,} rows a run:")
    print(f"  {'driver':<22}{'rows/s':>10}{'ratio':>8}{'CPU/row':>11}{'ratio':>8}{'server':>10}")
    for side in sides:
        print(
            f"  {side:<22}{median(side, rate):>10,.0f}{per_round_ratio(side, rate):>8.2f}"
            f"{median(side, cpu) * 1e6:>9.1f}µs{per_round_ratio(side, cpu):>8.2f}"
            f"{median(side, server) * 1e6:>8.1f}µs",
            flush=True,
        )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch", type=int, action="append", help="rows a transaction")
    parser.add_argument("--side", choices=SIDES, help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--rows", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.side is not None:
        figures = IOLoop.current().run_sync(
            lambda: one_side(args.side, args.url, args.batch[0], args.rows)
        )
        print(json.dumps(figures))
        return 0

    bindir = find_bindir()
    if bindir is None:
        print("PostgreSQL is not installed: apt-get install postgresql")
        return 1
    has_asyncpg = importlib.util.find_spec("asyncpg") is not None
    sides = [side for side in SIDES if has_asyncpg or not side.startswith("asyncpg")]
    if not has_asyncpg:
        print("asyncpg is not installed, so it is not measured (pip install asyncpg)")
    print("ratios: to psycopg-async in the same round (rows/s: higher is better; CPU: lower)")
    cluster = PostgresCluster(bindir).start()
    try:
        for size in args.batch or BATCHES:
            race(cluster, sides, size, args.rounds)
    finally:
        cluster.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
