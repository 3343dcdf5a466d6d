"""What Prometheus metrics cost the receiver: `hooklab serve` with and without `--metrics-port`.

Two servers, each on a home of its own, take turns under wrk (the seed workload, 16
connections), several rounds each; while the one with metrics is loaded, its metrics are
scraped every second (Prometheus scrapes every 15 s by default: this is the harsher case).
Printed: requests/s of each (median of rounds), CPU time per request, and their ratios.

    python benchmarks/bench_metrics.py [--rounds 3] [--seconds 5]
"""

from __future__ import annotations

import argparse
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # run as a script or a module

from benchmarks.bench_receiver import ADMIN_KEY, Run, create_webhook, measured, wrk  # noqa: E402
from benchmarks.workloads import WORKLOADS  # noqa: E402

# Metrics may cost at most this much more CPU a request. CPU time is the bar, not requests/s:
# other jobs on a shared machine move it far less.
BAR = 1.05


def start(home: Path, *extra: str) -> tuple[subprocess.Popen[str], str, str | None]:
    """`hooklab serve` on `home`: the process, its base URL and its metrics URL (if any)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "hooklab.server", "--home", str(home), "--port", "0", *extra],
        stdout=subprocess.PIPE,
        text=True,
        env={"HOOKLAB_ADMIN_KEY": ADMIN_KEY, "PATH": "/usr/bin:/bin"},
    )
    assert process.stdout is not None
    base = re.search(r"serving at (http://\S+)", process.stdout.readline())
    if base is None:
        process.kill()
        raise SystemExit("hooklab serve did not start")
    metrics = None
    if extra:
        for _ in range(5):
            found = re.search(r"metrics at (http://\S+)", process.stdout.readline())
            if found:
                metrics = found.group(1)
                break
    # The rest of what it prints is read by a thread, so a full pipe never blocks it.
    threading.Thread(target=process.stdout.read, daemon=True).start()
    return process, base.group(1), metrics


def scraping(url: str, stop: threading.Event, count: list[int]) -> None:
    while not stop.wait(1.0):
        with urllib.request.urlopen(url, timeout=10) as answer:
            answer.read()
        count[0] += 1


def main() -> int:
    options = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()))
    options.add_argument("--rounds", type=int, default=3)
    options.add_argument("--seconds", type=int, default=5)
    args = options.parse_args()
    if shutil.which("wrk") is None:
        print("wrk is not installed (Debian: apt-get install wrk)")
        return 1
    workload = WORKLOADS["seed"]
    homes = [Path(tempfile.mkdtemp(prefix="hooklab-bench-")) for _ in range(2)]
    plain, plain_base, _ = start(homes[0])
    counted, counted_base, metrics = start(homes[1], "--metrics-port", "0")
    assert metrics is not None
    runs: dict[str, list[Run]] = {"plain": [], "metrics": []}
    scrapes = [0]
    try:
        urls = {
            "plain": create_webhook(plain_base, workload),
            "metrics": create_webhook(counted_base, workload),
        }
        for name in urls:
            wrk(urls[name], 1, workload)  # warm-up
        for _ in range(args.rounds):
            runs["plain"].append(measured(plain, urls["plain"], args.seconds, workload))
            stop = threading.Event()
            scraper = threading.Thread(target=scraping, args=(metrics, stop, scrapes))
            scraper.start()
            runs["metrics"].append(measured(counted, urls["metrics"], args.seconds, workload))
            stop.set()
            scraper.join()
    finally:
        for process in (plain, counted):
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)
        for home in homes:
            shutil.rmtree(home, ignore_errors=True)
    rps = {name: statistics.median(r.requests_per_second for r in rs) for name, rs in runs.items()}
    cpu = {
        name: statistics.median(r.cpu_us_per_request or 0.0 for r in rs)
        for name, rs in runs.items()
    }
    for name, label in (("plain", "hooklab serve"), ("metrics", "with --metrics-port")):
        rounds = ", ".join(f"{r.requests_per_second:.0f}" for r in runs[name])
        print(f"{label:25s}: {rps[name]:7.0f} req/s, {cpu[name]:.0f} µs CPU a request "
              f"(rounds: {rounds})")  # fmt: skip
    print(f"{'throughput ratio':25s}: {rps['metrics'] / rps['plain']:.2f} with metrics")
    cost = cpu["metrics"] / cpu["plain"] if cpu["plain"] else 0.0
    verdict = "met" if cost <= BAR else "NOT met"
    print(f"{'CPU per request ratio':25s}: {cost:.2f} with metrics (bar {BAR:.2f}: {verdict})")
    print(f"{'scrapes during load':25s}: {scrapes[0]}", flush=True)
    return 0 if cost <= BAR else 1


if __name__ == "__main__":
    sys.exit(main())
