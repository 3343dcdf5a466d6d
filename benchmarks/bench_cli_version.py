"""`hooklab --version` against a bare `python -c pass`: what starting the command costs beyond
starting Python.

Each run is a fresh process. The two alternate, round after round, so that a busy machine
slows both alike; the median of each is compared. Prints the ratio of the command's median
to the bare start's.

    .venv/bin/python benchmarks/bench_cli_version.py [--rounds 21]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

import hooklab


def command() -> list[str]:
    """The installed `hooklab` script run by this Python, as a shell would start it; where
    hooklab is not installed, the same two lines the script runs."""
    script = Path(sys.executable).with_name("hooklab")
    if script.is_file():
        return [sys.executable, str(script), "--version"]
    code = "import sys\nfrom hooklab.cli import main\nsys.exit(main())"
    return [sys.executable, "-c", code, "--version"]


def timed(argv: list[str]) -> tuple[float, str]:
    start = time.perf_counter()
    ran = subprocess.run(argv, check=True, capture_output=True, text=True)
    return time.perf_counter() - start, ran.stdout


def main() -> int:
    parser = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()))
    parser.add_argument("--rounds", type=int, default=21)
    args = parser.parse_args()
    version = command()
    bare = [sys.executable, "-c", "pass"]
    _, printed = timed(version)  # also warms the file cache for both
    expected = f"hooklab {hooklab.__version__}\n"
    if printed != expected:
        print(f"`hooklab --version` printed {printed!r}, not {expected!r}")
        return 1
    timed(bare)
    times: dict[str, list[float]] = {"bare": [], "version": []}
    for round_ in range(args.rounds):
        pair = [("bare", bare), ("version", version)]
        for name, argv in pair if round_ % 2 == 0 else reversed(pair):
            times[name].append(timed(argv)[0])
    base = statistics.median(times["bare"])
    cli = statistics.median(times["version"])
    print(f"{args.rounds} rounds, fresh processes, alternating; medians:")
    print(f"  python -c pass     {base * 1000:7.1f} ms   1.00x")
    print(f"  hooklab --version  {cli * 1000:7.1f} ms   {cli / base:.2f}x the bare start")
    return 0


if __name__ == "__main__":
    sys.exit(main())
