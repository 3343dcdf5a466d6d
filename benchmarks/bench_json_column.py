"""What a frame's JSON column (`payload`) costs in each form pandas and Arrow offer.

Reads the payloads of a store (built by bench_readout.py) as Arrow text, then makes the column
in each form, each in a fresh process: the time to make it and the memory it adds, then the
time to read one cell as a value (a dict) and to read every cell so.

- `text`: pandas' Arrow-backed strings (`pd.ArrowDtype(pa.string())`); a cell is text,
  `json.loads` opens it.
- `jsonarray`: hooklab's `JSONArray`, the same text, a cell read as the value it holds.
- `dicts`: every payload parsed into a Python dict (an object column).
- `structs`: Arrow's JSON reader into one struct column (`pd.ArrowDtype(struct)`).

    .venv/bin/python benchmarks/bench_json_column.py --shape github --events 20000
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_readout import build, rss

FORMS = ("text", "jsonarray", "dicts", "structs")


def make(form: str, path: str) -> None:
    """Runs in a fresh process: the column in one form, and what it cost."""
    import sqlite3

    import pandas as pd
    import pyarrow as pa

    from hooklab.store.jsoncolumn import JSONArray
    from hooklab.store.resources import parse_lines

    db = sqlite3.connect(path)
    texts = pa.array([row[0] for row in db.execute("SELECT payload FROM events")], pa.string())
    db.close()
    before = rss()
    started = time.perf_counter()
    column: Any
    if form == "text":
        column = pd.Series(pd.arrays.ArrowExtensionArray(texts))
    elif form == "jsonarray":
        column = pd.Series(JSONArray(texts))
    elif form == "dicts":
        column = pd.Series([json.loads(text) for text in texts.to_pylist()], dtype=object)
    else:
        table = parse_lines(texts)
        if table is None:
            print(json.dumps({"error": "Arrow's JSON reader cannot type these payloads"}))
            return
        column = pd.Series(pd.arrays.ArrowExtensionArray(table.to_struct_array()))
    made = time.perf_counter() - started
    growth = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - before
    started = time.perf_counter()
    cell = column.iloc[len(column) // 2]
    value = json.loads(cell) if isinstance(cell, str) else cell
    assert isinstance(value, dict)
    one = time.perf_counter() - started
    started = time.perf_counter()
    values = column.tolist()
    if isinstance(values[0], str):
        values = [json.loads(v) for v in values]
    every = time.perf_counter() - started
    print(json.dumps({"made": made, "growth": growth, "one": one, "every": every}))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()))
    parser.add_argument("--shape", choices=("seed", "github", "passthrough"), default="github")
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--keep", type=Path, default=None)
    parser.add_argument("--make", nargs=2, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.make:
        make(*args.make)
        return 0
    folder = args.keep or Path(tempfile.mkdtemp(prefix="hooklab-json-"))
    path = folder / f"{args.shape}-{args.events}.db"
    if not path.exists():
        build(path, args.shape, args.events)
    print(f"{args.shape}, {args.events:,} payloads; each form in a fresh process")
    for form in FORMS:
        child = subprocess.run(
            [sys.executable, __file__, "--make", form, str(path)],
            capture_output=True,
            text=True,
            check=True,
        )
        found = json.loads(child.stdout.strip().splitlines()[-1])
        if "error" in found:
            print(f"  {form:<10} {found['error']}")
            continue
        print(
            f"  {form:<10} made in {found['made']:6.3f} s, +{found['growth'] / 1e6:5,.0f} MB;"
            f" one cell as a dict {found['one'] * 1e6:5.0f} µs, every cell {found['every']:5.2f} s"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
