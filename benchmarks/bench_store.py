"""Load benchmark: `hooklab serve` on PostgreSQL against `hooklab serve` on SQLite, with wrk.

Four servers, each its own process on this machine: `hooklab serve --store postgresql://...`
twice, on two databases of a throwaway cluster that this script starts, `hooklab serve` on a
SQLite home, and the bare Tornado handler that answers 204 and does nothing. wrk sends each
workload's POSTs over loopback with 16 connections; rounds alternate which server goes first.

The two PostgreSQL databases differ in one setting, because SQLite's and PostgreSQL's defaults
promise different things. hooklab's SQLite commits (WAL, synchronous=NORMAL) survive a crash of
hooklab but do not wait for the disk; PostgreSQL's default commit (synchronous_commit=on) waits
until the disk has the WAL, milliseconds on a shared disk. So:
- "PostgreSQL, commits not waiting for the disk" (`synchronous_commit=off` on its database) is
  the like-for-like side: a commit survives hooklab's crash, and a crash of the machine may lose
  the last fraction of a second on either store. The bar (0.70 of SQLite's throughput) is its.
- "PostgreSQL, durable commits" (the default) shows what waiting for the disk costs here.

Printed per workload (medians of the rounds): requests/s of each, each PostgreSQL side's
throughput as a ratio to SQLite's, and the CPU per request of each side as a ratio to the bare
handler's: the hooklab process, and PostgreSQL's processes (its backends, WAL writer and the
rest) counted apart. Then a check that every request wrk saw acknowledged is in each store.

The workloads (`benchmarks/workloads.py`; any of them with `--workload NAME`): by default the
seed (Prefect's dynamic template over form posts) and the bodies of real senders, each through
the template a user writes for it: a GitHub push delivery (tests/corpus/github, about 7 KB of
JSON), a Stripe `payment_intent.succeeded` event and a Slack message callback; a partial Prefect
event passed through whole, and CloudEvents (structured, binary, a batch of four) through
`from_cloud_event`.

    python benchmarks/bench_store.py [--rounds 3] [--seconds 5] [--workload NAME]
"""

from __future__ import annotations

import argparse
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
from benchmarks.workloads import (  # noqa: E402
    CLOUDEVENT_BATCH,
    CLOUDEVENT_BINARY,
    CLOUDEVENT_STRUCTURED,
    PASS_THROUGH,
    SEED,
    SENDERS,
    WORKLOADS,
    Workload,
)

BAR = 0.70  # PostgreSQL's throughput, like for like, at least this share of SQLite's
STORES = ("sqlite", "pg-async", "pg-durable")
SIDES = ("bare", *STORES)
LABELS = {
    "bare": "bare Tornado 204 handler",
    "sqlite": "hooklab on SQLite",
    "pg-async": "PostgreSQL, commits not waiting for the disk",
    "pg-durable": "PostgreSQL, durable commits",
}

# Run when no --workload is given: the seed, the bodies of real senders, a partial event passed
# through whole and CloudEvents.
DEFAULT = (
    SEED,
    *SENDERS,
    PASS_THROUGH,
    CLOUDEVENT_STRUCTURED,
    CLOUDEVENT_BINARY,
    CLOUDEVENT_BATCH,
)


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
    options = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()))
    options.add_argument("--rounds", type=int, default=3)
    options.add_argument("--seconds", type=int, default=5)
    options.add_argument("--workload", choices=sorted(WORKLOADS), action="append")
    args = options.parse_args()
    if shutil.which("wrk") is None:
        print("wrk is not installed (Debian: apt-get install wrk)")
        return 1
    bindir = find_bindir()
    if bindir is None:
        print("PostgreSQL is not installed: apt-get install postgresql")
        return 1
    workloads = [WORKLOADS[name] for name in args.workload] if args.workload else DEFAULT
    cluster = PostgresCluster(bindir, durable=True).start()
    homes = {side: Path(tempfile.mkdtemp(prefix=f"hooklab-bench-{side}-")) for side in STORES}
    servers = {}
    failed = False
    databases = {"pg-async": cluster.create_database(), "pg-durable": cluster.create_database()}
    try:
        with cluster.connect() as admin:  # the benchmark's own cluster and databases
            admin.execute(f"ALTER DATABASE {databases['pg-async']} SET synchronous_commit = off")
        env = {"HOOKLAB_ADMIN_KEY": ADMIN_KEY}
        serve = [sys.executable, "-m", "hooklab.server", "--port", "0"]
        for side in STORES:
            store = [] if side == "sqlite" else ["--store", cluster.url(databases[side])]
            servers[side] = start([*serve, "--home", str(homes[side]), *store], env=env)
        servers["bare"] = start([sys.executable, str(HERE / "bare_tornado.py")])
        assert cluster.process is not None
        acknowledged = dict.fromkeys(STORES, 0)
        for workload in workloads:
            urls = {"bare": f"{servers['bare'][1]}/hooks/baseline"}
            for side in STORES:
                urls[side] = create_webhook(servers[side][1], workload)
            for side in SIDES:  # warm-up
                run = wrk(urls[side], 1, workload)
                if side != "bare":
                    acknowledged[side] += run.acknowledged
            runs: dict[str, list[Run]] = {side: [] for side in SIDES}
            cpu: dict[str, list[dict[str, float]]] = {side: [] for side in SIDES}
            for round_ in range(args.rounds):
                shift = round_ % len(SIDES)
                for side in SIDES[shift:] + SIDES[:shift]:
                    pids = {"hooklab": servers[side][0].pid}
                    if side.startswith("pg-"):
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
    for side in STORES[1:]:
        with cluster.connect(databases[side]) as pg:
            row = pg.execute("SELECT count(*) FROM requests").fetchone()
            stored[side] = int(row[0]) if row else 0
    cluster.close()
    for home in homes.values():
        shutil.rmtree(home, ignore_errors=True)
    for side in STORES:
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
    """Print a workload's figures; True when PostgreSQL, like for like, misses the bar."""
    print(f"== {workload}")
    rps = {side: statistics.median(r.requests_per_second for r in rs) for side, rs in runs.items()}
    for side in SIDES:
        rounds = ", ".join(f"{r.requests_per_second:.0f}" for r in runs[side])
        p99 = statistics.median(r.p99_ms for r in runs[side])
        print(f"{LABELS[side]:45s}: {rps[side]:7.0f} req/s, p99 {p99:.1f} ms (rounds: {rounds})")

    def ratio(side: str) -> float:
        """The ratio of each round's pair (the two ran seconds apart), then their median."""
        pairs = zip(runs[side], runs["sqlite"], strict=True)
        return statistics.median(
            pg.requests_per_second / lite.requests_per_second for pg, lite in pairs
        )

    like = ratio("pg-async")
    verdict = "met" if like >= BAR else "NOT met"
    print(
        f"{'throughput, like for like':45s}: PostgreSQL {like:.2f} of SQLite "
        f"(bar {BAR:.2f}: {verdict})"
    )
    print(f"{'throughput, durable commits':45s}: PostgreSQL {ratio('pg-durable'):.2f} of SQLite")

    def median(side: str, name: str) -> float:
        return statistics.median(used[name] for used in cpu[side])

    bare = median("bare", "hooklab")
    lite = median("sqlite", "hooklab")
    print(
        f"{'CPU per request, SQLite':45s}: {lite:.0f} µs ({lite / bare:.2f}x bare's {bare:.0f} µs)"
    )
    for side in STORES[1:]:
        mine, server = median(side, "hooklab"), median(side, "postgres")
        print(
            f"{'CPU per request, ' + side:45s}: hooklab {mine:.0f} µs ({mine / bare:.2f}x bare), "
            f"PostgreSQL's processes {server:.0f} µs ({server / bare:.2f}x), "
            f"together {(mine + server) / bare:.2f}x",
            flush=True,
        )
    return like < BAR


if __name__ == "__main__":
    sys.exit(main())
