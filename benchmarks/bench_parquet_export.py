"""`hooklab events -o parquet` holds one batch at a time: memory stays flat as the history grows.

Builds stores of the seed's form posts at each size (100,000, 1,000,000 and 10,000,000 events
by default), exports each with the CLI in a fresh process, and prints that process's peak
resident memory and the reader's helper process's, as ratios to the smallest store's.

    .venv/bin/python benchmarks/bench_parquet_export.py [--sizes 100000,1000000,10000000]
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_readout import build


def export(home: str, out: str) -> None:
    """Runs in a fresh process: the CLI's export, then the peak memory of it and its helper."""
    from hooklab.cli import main

    started = time.perf_counter()
    status = main(["events", "--home", home, "-o", "parquet", "--file", out])
    seconds = time.perf_counter() - started
    from hooklab.store import snapshots

    snapshots._stop_all()  # waited for: its peak is counted among this process's children
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    helper = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    print(json.dumps({"status": status, "seconds": seconds, "peak": peak, "helper": helper}))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()))
    parser.add_argument("--sizes", default="100000,1000000,10000000")
    parser.add_argument("--keep", type=Path, default=None, help="reuse or keep the stores here")
    parser.add_argument("--export", nargs=2, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.export:
        export(*args.export)
        return 0
    folder = args.keep or Path(tempfile.mkdtemp(prefix="hooklab-parquet-"))
    results = []
    try:
        for size in (int(s) for s in args.sizes.split(",")):
            home = folder / f"seed-{size}"
            home.mkdir(parents=True, exist_ok=True)
            if not (home / "hooklab.db").exists():
                started = time.perf_counter()
                build(home / "hooklab.db", "seed", size, requests=False)  # events alone
                print(f"built {size:,} events in {time.perf_counter() - started:.0f} s", flush=True)
            out = folder / f"seed-{size}.parquet"
            child = subprocess.run(
                [sys.executable, __file__, "--export", str(home), str(out)],
                capture_output=True,
                text=True,
                check=True,
            )
            found = json.loads(child.stdout.strip().splitlines()[-1])
            found.update(size=size, file=out.stat().st_size)
            out.unlink()
            results.append(found)
            base = results[0]
            print(
                f"{size:>12,} events: {found['seconds']:6.1f} s,"
                f" parquet {found['file'] / 1e6:,.0f} MB,"
                f" CLI peak {found['peak'] / 1e6:,.0f} MB ({found['peak'] / base['peak']:.2f}x),"
                f" helper peak {found['helper'] / 1e6:,.0f} MB"
                f" ({found['helper'] / base['helper']:.2f}x)",
                flush=True,
            )
    finally:
        if args.keep is None:
            shutil.rmtree(folder, ignore_errors=True)
    worst = max(r["peak"] / results[0]["peak"] for r in results)
    print(f"largest peak / smallest store's: {worst:.2f} (flat: below 1.5)")
    return 0 if worst < 1.5 else 1


if __name__ == "__main__":
    raise SystemExit(main())
