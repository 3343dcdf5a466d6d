"""Reading the stored history into pandas: hooklab's readers against a raw ADBC read.

Builds a store of stored events and requests in one of three shapes, then reads it with each
reader, every read in a fresh process, and prints time and memory growth (peak resident memory
less what the process held before the read) as ratios to the baseline: ADBC's SQLite driver
reading `SELECT * FROM <table>` into Arrow, then `to_pandas()`. What a process does once
(imports, loading the driver's library, PostgreSQL's driver reading the server's types) is
done before the clock on both sides; each read opens its own connection to the store on
hooklab's side, as a read does.

Shapes (each made through the real pipeline once, then copied with new ids and times):
- `seed`: Prefect's dynamic example on form posts;
- `github`: the 60 real GitHub deliveries of tests/corpus, the whole body as the payload, with
  one failure (invalid JSON) in 50 and a webhook deleted after its deliveries;
- `passthrough`: JSON events passed through as they came (`{{ body|tojson }}` as the template).

Readers: `adbc` (the baseline), `connectorx`, `read_sql` (pandas over sqlite3), `hooklab`
(`Workspace.events()` / `.requests()`), `arrow` (`Workspace.events_arrow()` /
`.requests_arrow()`, without pandas).

    .venv/bin/python benchmarks/bench_readout.py --shape github --events 20000
    .venv/bin/python benchmarks/bench_readout.py --shape seed --events 1000000 --repeat 1
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "tests" / "corpus" / "github"
READERS = ("adbc", "connectorx", "read_sql", "hooklab", "arrow")
# The bars of the readers hooklab offers, against the baseline: time, memory growth.
BARS = {"hooklab": (1.5, 1.2)}

GITHUB_TEMPLATE = """{
  "event": "github.{{ headers['X-GitHub-Event'] }}{{ ('.' ~ body.action) if body.action }}",
  "resource": {
    "prefect.resource.id": {{ ("github.repository." ~ (body.repository.full_name
        or body.organization.login or "none"))|tojson }},
    "prefect.resource.name": {{ (body.repository.name or "")|tojson }},
    "github.delivery": "{{ headers['X-GitHub-Delivery'] }}"
  },
  "related": [{"prefect.resource.id": {{ ("github.user." ~ (body.sender.login or "ghost"))
      |tojson }}, "prefect.resource.role": "sender"}],
  "payload": {{ body|tojson }}
}"""
PASSTHROUGH_TEMPLATE = "{{ body|tojson }}"


def patterns(shape: str) -> list[tuple[str, str, dict[str, str], bytes, bool]]:
    """(webhook name, template, headers, body, delete the webhook after) of each request."""
    from hooklab.core.examples import DYNAMIC_TEMPLATE

    if shape == "seed":
        body = b"model=recommender-1&friendly_name=Recommender+1"
        form = {"Content-Type": "application/x-www-form-urlencoded", "User-Agent": "curl/8.5.0"}
        return [("models", DYNAMIC_TEMPLATE, form, body, False)]
    if shape == "passthrough":
        found = []
        for number in range(20):
            event = {
                "event": f"shop.order.{('placed', 'paid', 'shipped', 'refunded')[number % 4]}",
                "resource": {"prefect.resource.id": f"shop.order.{number}", "region": "eu"},
                "payload": {"order": number, "total": number * 12.5, "items": ["a"] * number},
            }
            found.append(
                (
                    "orders",
                    PASSTHROUGH_TEMPLATE,
                    {"Content-Type": "application/json"},
                    json.dumps(event).encode(),
                    False,
                )
            )
        return found
    found = []
    for number, path in enumerate(sorted(CORPUS.glob("*/*.json"))):
        headers = {
            "Content-Type": "application/json",
            "X-GitHub-Event": path.parent.name,
            "X-GitHub-Delivery": str(uuid.UUID(int=number)),
            "User-Agent": "GitHub-Hookshot/044aadd",
        }
        found.append(("github", GITHUB_TEMPLATE, headers, path.read_bytes(), False))
    # A delivery that fails (its body is no JSON), and one to a webhook deleted since.
    found.append(("github", GITHUB_TEMPLATE, found[0][2], b'{"action": ', False))
    found.append(("github-old", GITHUB_TEMPLATE, found[1][2], found[1][3], True))
    return found


def build(path: Path, shape: str, count: int, *, requests: bool = True) -> None:
    """A store of `count` events (and as many requests, unless not asked for) shaped as
    `shape`."""
    import sqlite3

    from hooklab.core.request import HookRequest
    from hooklab.workspace import Workspace

    ws = Workspace(path)
    hooks: dict[str, Any] = {}
    deleted = []
    for name, template, headers, body, delete in patterns(shape):
        if name not in hooks:
            hooks[name] = ws.create_webhook(name, template)
        ws.receive(hooks[name].slug, HookRequest.fake(method="POST", headers=headers, body=body))
        if delete:
            deleted.append(hooks[name].id)
    for webhook_id in deleted:
        ws.store.delete_webhook(webhook_id)
    ws.close()
    db = sqlite3.connect(path, isolation_level=None)
    stored = db.execute("SELECT * FROM requests ORDER BY seq").fetchall()
    events = db.execute("SELECT * FROM events ORDER BY seq").fetchall()
    by_request: dict[str, list[tuple[Any, ...]]] = {}
    for row in events:
        by_request.setdefault(row[2], []).append(row)
    db.execute("BEGIN")
    db.execute("DELETE FROM events")
    db.execute("DELETE FROM requests")
    request_rows, event_rows = _copies(stored, by_request, count, shape)
    if requests:
        db.executemany(f"INSERT INTO requests VALUES ({','.join('?' * 13)})", request_rows)
    db.executemany(f"INSERT INTO events VALUES ({','.join('?' * 13)})", event_rows)
    db.execute("COMMIT")
    db.close()


def _copies(
    requests: list[tuple[Any, ...]],
    by_request: dict[str, list[tuple[Any, ...]]],
    count: int,
    shape: str,
) -> tuple[Iterator[tuple[Any, ...]], Iterator[tuple[Any, ...]]]:
    """Rows of `count` requests and their events, cycling through the patterns; one in 50 of
    the GitHub shape is the failing delivery. A second apart, ten a second, from a year ago."""
    start = time.time() - 365 * 24 * 3600
    failing = len(requests) - 2 if shape == "github" else None
    order = [i for i in range(len(requests)) if i != failing]

    def pattern(number: int) -> int:
        if failing is not None and number % 50 == 49:
            return failing
        return order[number % len(order)]

    def stamp(number: int) -> str:
        moment = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(start + number // 10))
        return f"{moment}.{(number % 10) * 100_000 + 7:06d}+00:00"

    def request_rows() -> Iterator[tuple[Any, ...]]:
        for number in range(count):
            row = requests[pattern(number)]
            yield (None, str(uuid.UUID(int=number + 1)), *row[2:8], stamp(number), *row[9:])

    def event_rows() -> Iterator[tuple[Any, ...]]:
        for number in range(count):
            row = requests[pattern(number)]
            for event in by_request[row[1]][:1]:
                moment = stamp(number)
                yield (
                    None, str(uuid.UUID(int=count + number + 1)), str(uuid.UUID(int=number + 1)),
                    event[3], event[4], moment, moment, *event[7:],
                )  # fmt: skip

    return request_rows(), event_rows()


def rss(field: str = "VmRSS") -> int:
    """This process's resident memory (VmRSS), or its peak since `reset_peak` (VmHWM)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) * 1024
    return 0


def shared_memory() -> int:
    """Bytes of the sidecar's batch files this process maps: they are in memory, as files in
    /dev/shm, but count in its resident memory (as RssShmem) only as far as they are read."""
    mapped, current = 0, False
    with open("/proc/self/smaps") as maps:
        for line in maps:
            if re.match(r"[0-9a-f]+-[0-9a-f]+ ", line):  # a mapping's first line
                current = "/dev/shm/hooklab-" in line
            elif current and line.startswith("Size:"):
                mapped += int(line.split()[1]) * 1024
    return mapped


def reset_peak() -> None:
    """Start the peak (VmHWM) afresh: a child's peak otherwise starts at its parent's memory
    when it was started, as ru_maxrss does on Linux."""
    with open("/proc/self/clear_refs", "w") as refs:
        refs.write("5")


def read(reader: str, path: str, table: str) -> None:
    """Runs in a fresh process: one read, then its time and memory growth as JSON."""
    import pandas as pd
    import pyarrow as pa

    frame: Any
    postgres = path.startswith("postgresql://")
    if postgres:  # a copy of the store in PostgreSQL tables of the same columns
        import adbc_driver_postgresql.dbapi as pg

        import hooklab.store.frames
        from hooklab.store.readout import Reader

        connection = pg.connect(path)
        cursor = connection.cursor()
        if reader != "adbc":  # the driver's start on this server, once a process, as the above
            Reader(path).count(table)
    elif reader == "adbc":
        import adbc_driver_sqlite.dbapi as adbc

        connection = adbc.connect(path)
        cursor = connection.cursor()
        # The driver types each column from the first batch it reads: one batch of every row,
        # so that a column empty in the first rows (error, follows) is not typed wrongly.
        cursor.adbc_statement.set_options(**{"adbc.sqlite.query.batch_rows": str(10**9)})
    elif reader == "connectorx":
        import connectorx  # type: ignore[import-not-found]
    elif reader == "read_sql":
        import sqlite3
    else:  # its modules imported and its driver loaded before the clock, as the baseline's are
        import adbc_driver_sqlite

        import hooklab.store.frames
        import hooklab.store.jsoncolumn
        import hooklab.store.readout
        from hooklab.workspace import Workspace

        # The baseline's connection loads the driver's library (its code, a copy of SQLite):
        # here a database in memory loads it, and the read opens its own file as it must.
        adbc_driver_sqlite.connect(":memory:").close()
        del adbc_driver_sqlite

        ws = Workspace(path)
    del pa
    reset_peak()
    before = rss()
    started = time.perf_counter()
    if postgres and reader == "adbc":
        cursor.execute(f"SELECT * FROM {table}")
        frame = cursor.fetch_arrow_table().to_pandas()
    elif postgres:
        found = Reader(path).table(table)
        frame = hooklab.store.frames.frame_of(found) if reader == "hooklab" else found
    elif reader == "adbc":
        cursor.execute(f"SELECT * FROM {table}")
        frame = cursor.fetch_arrow_table().to_pandas()
    elif reader == "connectorx":
        arrow = connectorx.read_sql(
            f"sqlite://{path}", f"SELECT * FROM {table}", return_type="arrow"
        )
        frame = arrow.to_pandas()
    elif reader == "read_sql":
        frame = pd.read_sql(f"SELECT * FROM {table}", sqlite3.connect(path))
    elif reader == "hooklab":
        frame = ws.events() if table == "events" else ws.requests()
    else:
        frame = ws.events_arrow() if table == "events" else ws.requests_arrow()
    seconds = time.perf_counter() - started
    # The batch files mapped count whole, and those of their pages read (in RssShmem) once.
    peak = rss("VmHWM") - rss("RssShmem") + shared_memory()
    helper = 0
    if reader in ("hooklab", "arrow"):  # the sidecar process that read the file, if one did
        from hooklab.store import snapshots

        snapshots._stop_all()
        helper = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    print(json.dumps({"rows": len(frame), "seconds": seconds, "growth": peak - before,
                      "helper": helper}))  # fmt: skip


def measure(reader: str, path: Path | str, table: str) -> dict[str, float]:
    child = subprocess.run(
        [sys.executable, __file__, "--read", reader, str(path), table],
        capture_output=True,
        text=True,
        check=False,
    )
    if child.returncode != 0:
        return {"error": 1.0, "message": child.stderr.strip().splitlines()[-1]}  # type: ignore[dict-item]
    result: dict[str, float] = json.loads(child.stdout.strip().splitlines()[-1])
    return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()))
    parser.add_argument("--shape", choices=("seed", "github", "passthrough"), default="github")
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3, help="fresh processes per reader")
    parser.add_argument("--readers", default=",".join(READERS))
    parser.add_argument("--tables", default="events,requests")
    parser.add_argument("--keep", type=Path, default=None, help="reuse or keep the store here")
    parser.add_argument(
        "--postgres", metavar="URL", help="read a copy of the store in a PostgreSQL server"
    )
    parser.add_argument("--read", nargs=3, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.read:
        read(*args.read)
        return 0
    folder = args.keep or Path(tempfile.mkdtemp(prefix="hooklab-readout-"))
    path = folder / f"{args.shape}-{args.events}.db"
    failed = False
    source: Path | str = path
    try:
        if not path.exists():
            started = time.perf_counter()
            build(path, args.shape, args.events)
            seconds = time.perf_counter() - started
            print(f"built {args.events:,} {args.shape} events in {seconds:.0f} s")
        size = path.stat().st_size
        print(f"{args.shape}, {args.events:,} events and requests, {size / 1e6:,.0f} MB file; "
              f"best of {args.repeat} fresh processes; ratios to adbc")  # fmt: skip
        readers = args.readers.split(",")
        if args.postgres:
            sys.path.insert(0, str(ROOT / "tests"))
            from readout_corpus import copy_to_postgres

            schema = f"bench_{args.shape}_{args.events}_{os.getpid()}"
            source = copy_to_postgres(path, args.postgres, schema)
            readers = [r for r in readers if r in ("adbc", "hooklab", "arrow")]
            print(f"  read from PostgreSQL ({schema}), ADBC's driver in each process")
        for table in args.tables.split(","):
            results: dict[str, dict[str, float]] = {}
            # Alternate the readers round by round, so that a busy moment falls on all.
            for _ in range(args.repeat):
                for reader in readers:
                    found = measure(reader, source, table)
                    best = results.setdefault(reader, found)
                    if "error" not in found and "error" not in best:
                        best["seconds"] = min(best["seconds"], found["seconds"])
                        best["growth"] = min(best["growth"], found["growth"])
            base = results.get("adbc")
            print(f"  {table}:")
            for reader in readers:
                found = results[reader]
                if "error" in found:
                    print(f"    {reader:<11} failed: {found['message']}")
                    continue
                line = (
                    f"    {reader:<11} {found['seconds']:7.2f} s {found['growth'] / 1e6:8,.0f} MB"
                )
                if found.get("helper"):
                    line += f" (+ sidecar peak {found['helper'] / 1e6:,.0f} MB)"
                if base and "error" not in base:
                    time_ratio = found["seconds"] / base["seconds"]
                    memory_ratio = found["growth"] / base["growth"]
                    line += f"   {time_ratio:5.2f}x time  {memory_ratio:5.2f}x memory"
                    if reader in BARS:
                        bar_time, bar_memory = BARS[reader]
                        met = time_ratio <= bar_time and memory_ratio <= bar_memory
                        failed |= not met
                        line += f"   bars {bar_time}x, {bar_memory}x: {'met' if met else 'NOT met'}"
                print(line, flush=True)
    finally:
        if args.postgres and isinstance(source, str):
            from readout_corpus import drop_schema

            drop_schema(args.postgres, source)
        if args.keep is None:
            shutil.rmtree(folder, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
