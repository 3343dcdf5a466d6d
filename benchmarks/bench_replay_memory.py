"""Peak memory of `hooklab replay` as the history grows: a small history and one ten times as
large, each replayed in a fresh process, and the ratio of their peaks.

The stores hold real GitHub deliveries of every event type (tests/corpus, as
benchmarks/bench_readout.py builds them: rows copied, not received one by one), one in 50 a
delivery that fails. Each is replayed through a new template that changes one field of every
event, so the diff has something to say about each request. The peak is the replaying
process's high-water mark of resident memory (`VmHWM`), as the kernel keeps it.

    .venv/bin/python benchmarks/bench_replay_memory.py [--small 20000] [--large 200000]
        [--postgres URL]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script or a module

from benchmarks.bench_readout import GITHUB_TEMPLATE, build

BAR = 1.5  # the large history's peak over the small one's, at most
NEW_TEMPLATE = GITHUB_TEMPLATE.replace('"github.delivery"', '"github.delivery-id"')
ROOT = Path(__file__).resolve().parent.parent
HOOKLAB = str(Path(sys.executable).parent / "hooklab")


def replay_peak(store: str, folder: Path) -> tuple[float, float, str]:
    """Seconds and peak resident bytes of `hooklab replay github` in a process of its own,
    and what it printed."""
    template = folder / "new.j2"
    template.write_text(NEW_TEMPLATE)
    script = (
        "import sys, runpy\n"
        f"sys.argv = ['hooklab', 'replay', 'github', '--template', {str(template)!r},"
        f" '--store', {store!r}]\n"
        "try:\n"
        "    runpy.run_module('hooklab', run_name='__main__')\n"
        "except SystemExit:\n"
        "    pass\n"
        "for line in open('/proc/self/status'):\n"
        "    if line.startswith('VmHWM:'):\n"
        "        print('PEAK', int(line.split()[1]) * 1024)\n"
    )
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=ROOT
    )
    seconds = time.perf_counter() - started
    lines = done.stdout.splitlines()
    peak = next(int(line.split()[1]) for line in lines if line.startswith("PEAK "))
    return seconds, peak, "\n".join(line for line in lines if not line.startswith("PEAK "))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()))
    parser.add_argument("--small", type=int, default=20_000)
    parser.add_argument("--large", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--postgres", metavar="URL", help="replay copies of the stores there")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        stores = {}
        for count in (args.small, args.large):
            path = Path(folder) / f"history-{count}.db"
            started = time.perf_counter()
            build(path, "github", count)
            stores[count] = str(path)
            print(f"built {count:,} requests in {time.perf_counter() - started:.0f} s", flush=True)
        if args.postgres:
            sys.path.insert(0, str(ROOT / "tests"))
            from readout_corpus import copy_to_postgres

            for count in stores:
                schema = f"replay_memory_{count}_{os.getpid()}"
                stores[count] = copy_to_postgres(Path(stores[count]), args.postgres, schema)
        peaks: dict[int, list[int]] = {args.small: [], args.large: []}
        for round_ in range(args.rounds):
            order = [args.small, args.large] if round_ % 2 == 0 else [args.large, args.small]
            for count in order:
                seconds, peak, shown = replay_peak(stores[count], Path(folder))
                peaks[count].append(peak)
                print(f"{count:>9,} requests: peak {peak / 2**20:,.0f} MiB in {seconds:.1f} s")
                print("    " + shown.replace("\n", "\n    "), flush=True)
    small, large = min(peaks[args.small]), min(peaks[args.large])
    ratio = large / small
    verdict = "met" if ratio <= BAR else "NOT met"
    print(f"peak at {args.large:,} / peak at {args.small:,}: {ratio:.2f}x (bar {BAR}: {verdict})")
    return 0 if ratio <= BAR else 1


if __name__ == "__main__":
    raise SystemExit(main())
