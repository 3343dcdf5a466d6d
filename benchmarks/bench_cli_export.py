"""`hooklab events -o csv|json|parquet` on 100,000 stored events, against pandas writing the same
frame itself, both in fresh processes on the same workspace file.

The baseline loads `Workspace.events()` and calls `to_csv` / `to_json` / `to_parquet` directly;
the CLI adds what a user gets from the command (nested values as JSON, ISO times, chunked writes
with progress). Prints each export's time as a ratio of its baseline's.

    .venv/bin/python benchmarks/bench_cli_export.py [--events 100000]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from hooklab.core.examples import DYNAMIC_TEMPLATE as SEED_TEMPLATE

BASELINES = {
    "csv": "frame.to_csv(out, index=False)",
    "json": "frame.to_json(out, orient='records', date_format='iso')",
    "parquet": "frame.astype({c: str for c in ('related', 'payload')}).to_parquet(out)",
}


def build(path: Path, count: int) -> None:
    """A workspace with `count` form posts received through the real pipeline."""
    from hooklab import HookRequest, Workspace

    ws = Workspace(path)
    hook = ws.create_webhook("models", SEED_TEMPLATE)
    for start in range(0, count, 10_000):
        outcomes = [
            ws.process(
                hook.slug,
                HookRequest.fake(method="POST", form={"model": f"m{i}", "friendly_name": f"M{i}"}),
            )
            for i in range(start, min(count, start + 10_000))
        ]
        ws.record(outcomes)
    ws.close()


def timed(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()))
    parser.add_argument("--events", type=int, default=100_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        home = Path(folder)
        build(home / "hooklab.db", args.events)
        print(f"{args.events:,} events; each time is the best of 3 fresh processes")
        for fmt, write in BASELINES.items():
            out = home / f"out.{fmt}"
            baseline = (
                "import hooklab, sys; "
                f"frame = hooklab.Workspace(sys.argv[1]).events(); out = sys.argv[2]; {write}"
            )
            base = min(
                timed([sys.executable, "-c", baseline, str(home / "hooklab.db"), str(out)])
                for _ in range(3)
            )
            cli = min(
                timed(
                    [
                        sys.executable,
                        "-m",
                        "hooklab",
                        "events",
                        "--home",
                        str(home),
                        "-o",
                        fmt,
                        "--file",
                        str(out),
                    ]
                )
                for _ in range(3)
            )
            print(
                f"{fmt:8} pandas alone {base:6.2f} s   hooklab events {cli:6.2f} s   "
                f"ratio {cli / base:4.2f}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
