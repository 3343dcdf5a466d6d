"""Load benchmark: `hooklab serve` on PostgreSQL against `hooklab serve` on SQLite, with wrk.

Three servers, each its own process on this machine: `hooklab serve --store postgresql://...`
on a throwaway cluster that this script starts (PostgreSQL's durable defaults: fsync and
synchronous commit on, as SQLite's commits are durable too), `hooklab serve` on a SQLite home,
and the bare Tornado handler that answers 204 and does nothing. wrk sends each workload's POSTs
over loopback with 16 connections; rounds alternate which server goes first. Printed per
workload (medians of the rounds): requests/s of each, PostgreSQL's throughput as a ratio to
SQLite's (the bar: 0.70), and the CPU per request of each side as a ratio to the bare
handler's: the hooklab process, and PostgreSQL's processes (its backends, WAL writer and the
rest) counted apart. Then a check that every request wrk saw acknowledged is in each store.

The workloads: the seed (Prefect's dynamic template over form posts), and a real GitHub push
delivery (tests/corpus/github, about 7 KB of JSON) through a template of lookups and `tojson`.

`--pg-setting synchronous_commit=off` (any `NAME=VALUE`, repeatable) sets it on the cluster
first: with it, a commit returns before its WAL reaches the disk, which shows how much of the
difference is the wait for that flush.

    python benchmarks/bench_store.py [--rounds 3] [--seconds 5] [--workload NAME]
        [--pg-setting NAME=VALUE]
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import sqlite3
import statistics
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))  # run as a script or a module
sys.path.insert(0, str(ROOT / "tests"))  # the suite's cluster helper

from pg_support import PostgresCluster, find_bindir  # noqa: E402

from benchmarks.bench_receiver import (  # noqa: E402
    ADMIN_KEY,
    Run,
    cpu_seconds,
    create_webhook,
    start,
    wrk,
)
from benchmarks.workloads import JSON, SEED, Workload  # noqa: E402

BAR = 0.70  # PostgreSQL's throughput, at least this share of SQLite's
SIDES = ("bare", "sqlite", "postgresql")

GITHUB_PUSH = Workload(
    "github-push",
    """{
  "event": "github.push",
  "resource": {
    "prefect.resource.id": "github.repo.{{ body.repository.full_name }}",
    "prefect.resource.name": "{{ body.repository.name }}",
    "ref": "{{ body.ref }}"
  },
  "payload": {
    "pusher": {{ body.pusher|tojson }},
    "sender": {{ body.sender.login|tojson }},
    "after": {{ body.after|tojson }},
    "commits": {{ body.commits|length }}
  }
}""",
    JSON,
    json.dumps(json.loads((ROOT / "tests/corpus/github/push/payload.json").read_text())),
    headers={"X-GitHub-Event": "push"},
)
WORKLOADS = {w.name: w for w in (SEED, GITHUB_PUSH)}


def measured(
    pids: dict[str, int], url: str, seconds: int, workload: Workload
) -> tuple[Run, dict[str, float]]:
    """A wrk round and the CPU per request (µs) of each process named in `pids` (a process
    counts with its children: PostgreSQL's postmaster with every backend and helper)."""
    before = {name: cpu_seconds(pid) or 0.0 for name, pid in pids.items()}
    run = wrk(url, seconds, workload)
    after = {name: cpu_seconds(pid) or 0.0 for name, pid in pids.items()}
    count = max(run.responses, 1)
    return run, {name: (after[name] - before[name]) / count * 1e6 for name in pids}


def main() -> int:
    options = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    options.add_argument("--rounds", type=int, default=3)
    options.add_argument("--seconds", type=int, default=5)
    options.add_argument("--workload", choices=sorted(WORKLOADS), action="append")
    options.add_argument("--pg-setting", action="append", default=[], metavar="NAME=VALUE")
    args = options.parse_args()
    if shutil.which("wrk") is None:
        print("wrk is not installed (Debian: apt-get install wrk)")
        return 1
    bindir = find_bindir()
    if bindir is None:
        print("PostgreSQL is not installed: apt-get install postgresql")
        return 1
    workloads = [WORKLOADS[name] for name in args.workload or WORKLOADS]
    cluster = PostgresCluster(bindir, durable=True).start()
    homes = {side: Path(tempfile.mkdtemp(prefix=f"hooklab-bench-{side}-")) for side in SIDES[1:]}
    servers = {}
    failed = False
    try:
        with cluster.connect() as admin:
            for setting in args.pg_setting:
                name, _, value = setting.partition("=")
                admin.execute(f"ALTER SYSTEM SET {name} = {value}")  # the benchmark's own cluster
            admin.execute("SELECT pg_reload_conf()")
        if args.pg_setting:
            print(f"PostgreSQL with {', '.join(args.pg_setting)}")
        database = cluster.create_database()
        url = cluster.url(database)
        env = {"HOOKLAB_ADMIN_KEY": ADMIN_KEY}
        serve = [sys.executable, "-m", "hooklab.server", "--port", "0"]
        servers["sqlite"] = start([*serve, "--home", str(homes["sqlite"])], env=env)
        servers["postgresql"] = start(
            [*serve, "--home", str(homes["postgresql"]), "--store", url], env=env
        )
        servers["bare"] = start([sys.executable, str(HERE / "bare_tornado.py")])
        assert cluster.process is not None
        acknowledged = {"sqlite": 0, "postgresql": 0}
        for workload in workloads:
            urls = {"bare": f"{servers['bare'][1]}/hooks/baseline"}
            for side in ("sqlite", "postgresql"):
                urls[side] = create_webhook(servers[side][1], workload)
            for side in SIDES:  # warm-up
                run = wrk(urls[side], 1, workload)
                if side != "bare":
                    acknowledged[side] += run.acknowledged
            runs: dict[str, list[Run]] = {side: [] for side in SIDES}
            cpu: dict[str, list[dict[str, float]]] = {side: [] for side in SIDES}
            for round_ in range(args.rounds):
                order = SIDES[round_ % 3 :] + SIDES[: round_ % 3]
                for side in order:
                    pids = {"hooklab": servers[side][0].pid}
                    if side == "postgresql":
                        pids["postgres"] = cluster.process.pid
                    run, used = measured(pids, urls[side], args.seconds, workload)
                    runs[side].append(run)
                    cpu[side].append(used)
                    if side != "bare":
                        acknowledged[side] += run.acknowledged
            failed |= report(workload.name, runs, cpu)
    finally:
        for process, _ in servers.values():
            process.send_signal(signal.SIGTERM)  # hooklab answers what is in progress, then exits
            process.wait(timeout=30)
    with sqlite3.connect(homes["sqlite"] / "hooklab.db") as db:
        stored = {"sqlite": db.execute("SELECT count(*) FROM requests").fetchone()[0]}
    with cluster.connect(database) as pg:
        row = pg.execute("SELECT count(*) FROM requests").fetchone()
        stored["postgresql"] = int(row[0]) if row else 0
    cluster.close()
    for home in homes.values():
        shutil.rmtree(home, ignore_errors=True)
    for side in ("sqlite", "postgresql"):
        lost = max(acknowledged[side] - stored[side], 0)
        failed |= lost > 0
        print(
            f"{'durability, ' + side:25s}: wrk saw {acknowledged[side]} 2xx, "
            f"{stored[side]} stored, lost {lost}"
        )
    return 1 if failed else 0


def report(
    workload: str, runs: dict[str, list[Run]], cpu: dict[str, list[dict[str, float]]]
) -> bool:
    """Print a workload's figures; True when PostgreSQL misses the bar."""
    print(f"== {workload}")
    rps = {side: statistics.median(r.requests_per_second for r in rs) for side, rs in runs.items()}
    labels = {
        "bare": "bare Tornado 204 handler",
        "sqlite": "hooklab on SQLite",
        "postgresql": "hooklab on PostgreSQL",
    }
    for side in SIDES:
        rounds = ", ".join(f"{r.requests_per_second:.0f}" for r in runs[side])
        p99 = statistics.median(r.p99_ms for r in runs[side])
        print(f"{labels[side]:25s}: {rps[side]:7.0f} req/s, p99 {p99:.1f} ms (rounds: {rounds})")
    # The ratio of each round's pair (the two ran seconds apart), then their median.
    pairs = zip(runs["postgresql"], runs["sqlite"], strict=True)
    ratio = statistics.median(
        pg.requests_per_second / lite.requests_per_second for pg, lite in pairs
    )
    verdict = "met" if ratio >= BAR else "NOT met"
    print(f"{'throughput ratio':25s}: PostgreSQL {ratio:.2f} of SQLite (bar {BAR:.2f}: {verdict})")

    def median(side: str, name: str) -> float:
        return statistics.median(used[name] for used in cpu[side])

    bare = median("bare", "hooklab")
    lite = median("sqlite", "hooklab")
    pg_hooklab, pg_server = median("postgresql", "hooklab"), median("postgresql", "postgres")
    print(
        f"{'CPU per request':25s}: bare {bare:.0f} µs; SQLite side {lite:.0f} µs "
        f"({lite / bare:.2f}x bare); PostgreSQL side: hooklab {pg_hooklab:.0f} µs "
        f"({pg_hooklab / bare:.2f}x bare), PostgreSQL's processes {pg_server:.0f} µs "
        f"({pg_server / bare:.2f}x bare), together {(pg_hooklab + pg_server) / bare:.2f}x",
        flush=True,
    )
    return ratio < BAR


if __name__ == "__main__":
    sys.exit(main())
