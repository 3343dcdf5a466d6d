"""Load benchmark: `hooklab serve` against a bare Tornado 204 handler, both driven by wrk.

For each workload of `benchmarks/workloads.py` (the seed's dynamic template over form posts,
`default` over percent-escaped form bodies, a filter chain, nested lookups and `tojson` over
JSON, `if` blocks, a partial Prefect event passed through whole, CloudEvents in structured and
binary mode and in a batch of four), wrk sends its POSTs over loopback with 16 connections to
a webhook with its template. The two servers run as separate processes and take turns,
several rounds each, so that both see the same machine. Printed per workload: requests/s of
each (median of rounds), their ratio, p99 latency, CPU time per request; and a check that
every request wrk saw acknowledged with a 2xx is in the SQLite file.

    python benchmarks/bench_receiver.py [--rounds 3] [--seconds 5] [--workload NAME]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # run as a script or a module

from benchmarks.workloads import WORKLOADS, Workload  # noqa: E402

# The least each workload must reach (issue 9): the seed no lower than before the one-pipeline
# work (0.73 to 0.85 measured then on this shared machine), `default` over escaped forms 0.75.
BARS = {"seed": 0.77, "escaped-form-default": 0.75}
CONNECTIONS = 16
ADMIN_KEY = "bench-admin-key"


@dataclass
class Run:
    requests_per_second: float
    p99_ms: float
    responses: int
    not_2xx: int
    cpu_us_per_request: float | None = None

    @property
    def acknowledged(self) -> int:
        return self.responses - self.not_2xx


def start(
    command: list[str], env: dict[str, str] | None = None
) -> tuple[subprocess.Popen[str], str]:
    """Start a server process and read the base URL from its first line."""
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, text=True, env={**os.environ, **(env or {})}
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    match = re.search(r"http://\S+", line)
    if match is None:
        process.kill()
        process.wait(timeout=30)
        raise SystemExit(f"server did not start: {command}")
    return process, match.group(0)


def create_webhook(base: str, workload: Workload) -> str:
    request = urllib.request.Request(
        f"{base}/api/webhooks/",
        data=json.dumps({"name": workload.name, "template": workload.template}).encode(),
        headers={"Authorization": f"Bearer {ADMIN_KEY}", "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return f"{base}/hooks/{json.load(response)['slug']}"


def wrk(url: str, seconds: int, workload: Workload) -> Run:
    extra = [f"{name}: {value}" for name, value in workload.headers.items()]
    output = subprocess.run(
        [
            "wrk", "-t2", f"-c{CONNECTIONS}", f"-d{seconds}s", "--latency", "--timeout", "10s",
            "-s", str(HERE / "post.lua"), url, "--", workload.content_type, workload.body_pattern,
            *extra,
        ],
        capture_output=True, text=True, check=True, timeout=seconds + 60,
    ).stdout  # fmt: skip
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    responses = int(re.search(r"(\d+) requests in", output).group(1))  # type: ignore[union-attr]
    not_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    return Run(rps, _p99_ms(output), responses, int(not_2xx.group(1)) if not_2xx else 0)


def cpu_seconds(pid: int) -> float | None:
    """CPU time (user + system, all threads) a process and the children it runs now have used
    (`hooklab serve` forwards from a child process); None off Linux."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    total = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    for child in _children(pid):
        total += cpu_seconds(child) or 0.0
    return total


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):  # the thread ended meanwhile
            found += [int(child) for child in (task / "children").read_text().split()]
    return found


def measured(server: subprocess.Popen[str], url: str, seconds: int, workload: Workload) -> Run:
    """A wrk round, with the server's CPU time per request: other jobs on the machine move
    it less than they move requests per second."""
    before = cpu_seconds(server.pid)
    run = wrk(url, seconds, workload)
    after = cpu_seconds(server.pid)
    if before is not None and after is not None and run.responses:
        run.cpu_us_per_request = (after - before) / run.responses * 1e6
    return run


def _p99_ms(output: str) -> float:
    value, unit = re.search(r"99%\s+([\d.]+)(us|ms|s)", output).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def main() -> int:
    options = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    options.add_argument("--rounds", type=int, default=3)
    options.add_argument("--seconds", type=int, default=5)
    options.add_argument("--workload", choices=sorted(WORKLOADS), action="append")
    args = options.parse_args()
    if shutil.which("wrk") is None:
        print("wrk is not installed (Debian: apt-get install wrk)")
        return 1
    workloads = [WORKLOADS[name] for name in args.workload or WORKLOADS]
    home = Path(tempfile.mkdtemp(prefix="hooklab-bench-"))
    hooklab, base = start(
        [sys.executable, "-m", "hooklab.server", "--home", str(home), "--port", "0"],
        env={"HOOKLAB_ADMIN_KEY": ADMIN_KEY},
    )
    results: dict[str, dict[str, list[Run]]] = {}
    acknowledged = 0
    try:
        bare, bare_base = start([sys.executable, str(HERE / "bare_tornado.py")])
        try:
            bare_url = f"{bare_base}/hooks/baseline"
            for workload in workloads:
                hook_url = create_webhook(base, workload)
                acknowledged += wrk(hook_url, 1, workload).acknowledged  # warm-up
                wrk(bare_url, 1, workload)
                runs: dict[str, list[Run]] = {"hooklab": [], "bare": []}
                for _ in range(args.rounds):
                    runs["bare"].append(measured(bare, bare_url, args.seconds, workload))
                    runs["hooklab"].append(measured(hooklab, hook_url, args.seconds, workload))
                acknowledged += sum(run.acknowledged for run in runs["hooklab"])
                results[workload.name] = runs
                report(workload.name, runs)
        finally:
            # SIGTERM, not SIGINT: a benchmark started in the background has SIGINT ignored.
            bare.terminate()
            bare.wait(timeout=30)
    finally:
        # SIGTERM: hooklab stores and answers what is in progress, then exits.
        hooklab.send_signal(signal.SIGTERM)
        hooklab.wait(timeout=30)
    with sqlite3.connect(home / "hooklab.db") as db:
        stored = db.execute("SELECT count(*) FROM requests WHERE status = 204").fetchone()[0]
    shutil.rmtree(home, ignore_errors=True)

    lost = max(acknowledged - stored, 0)
    print(f"{'durability':25s}: wrk saw {acknowledged} 2xx, {stored} stored with 204, lost {lost}")
    missed = [name for name, runs in results.items() if ratio_of(runs) < BARS.get(name, 0.0)]
    return 1 if lost or missed else 0


def ratio_of(runs: dict[str, list[Run]]) -> float:
    rps = {name: statistics.median(r.requests_per_second for r in rs) for name, rs in runs.items()}
    return rps["hooklab"] / rps["bare"]


def report(workload: str, runs: dict[str, list[Run]]) -> None:
    print(f"== {workload}")
    rps = {name: statistics.median(r.requests_per_second for r in rs) for name, rs in runs.items()}
    p99 = {name: statistics.median(r.p99_ms for r in rs) for name, rs in runs.items()}
    for name, label in (("bare", "bare Tornado 204 handler"), ("hooklab", "hooklab serve")):
        rounds = ", ".join(f"{r.requests_per_second:.0f}" for r in runs[name])
        print(f"{label:25s}: {rps[name]:7.0f} req/s, p99 {p99[name]:.1f} ms (rounds: {rounds})")
    ratio = ratio_of(runs)
    bar = BARS.get(workload)
    verdict = f" (bar {bar:.2f}: {'met' if ratio >= bar else 'NOT met'})" if bar else ""
    print(f"{'throughput ratio':25s}: {ratio:.2f} of the bare handler{verdict}")
    print(f"{'p99 latency ratio':25s}: {p99['hooklab'] / p99['bare']:.1f}x the bare handler")
    cpu: dict[str, float] = {}
    for name, rs in runs.items():
        figures = [r.cpu_us_per_request for r in rs if r.cpu_us_per_request is not None]
        if len(figures) == len(rs):
            cpu[name] = statistics.median(figures)
    if len(cpu) == 2:
        print(
            f"{'CPU per request':25s}: hooklab {cpu['hooklab']:.0f} µs, bare {cpu['bare']:.0f} µs: "
            f"ratio {cpu['bare'] / cpu['hooklab']:.2f} (the throughput one process can reach)",
            flush=True,
        )


if __name__ == "__main__":
    sys.exit(main())
