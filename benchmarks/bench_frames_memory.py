"""Load 1,000,000 stored events into a DataFrame (`Workspace.events()`) in under 2 GB of memory.

Builds a workspace file with a million events shaped exactly like those the seed's dynamic
template stores for form posts (one real event is made through the pipeline and used as the
pattern), then loads them in a fresh process and reports that process's peak resident memory
as a ratio of the 2 GB budget and of the SQLite file's size.

    .venv/bin/python benchmarks/bench_frames_memory.py [--events 1000000] [--keep DIR]
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
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path

from hooklab.core.examples import DYNAMIC_TEMPLATE as SEED_TEMPLATE

BUDGET_BYTES = 2 * 1024**3


def build(path: Path, count: int) -> None:
    """A workspace whose events table holds `count` events like a real form post's."""
    from hooklab.core.request import HookRequest
    from hooklab.workspace import Workspace

    ws = Workspace(path)
    hook = ws.create_webhook("models", SEED_TEMPLATE)
    sample = HookRequest.fake(
        method="POST",
        headers={"Host": "127.0.0.1:8765", "User-Agent": "curl/8.5.0", "Accept": "*/*"},
        form={"model": "MODEL", "friendly_name": "NAME"},
    )
    ws.receive(hook.slug, sample)
    columns, rows = ws.store.event_rows()
    pattern = dict(zip(columns, rows[0], strict=True))
    with ws.store.transaction() as db:
        db.execute("DELETE FROM events")
        db.executemany(
            "INSERT INTO events (id, request_id, webhook_id, event, occurred, received, "
            "resource, related, payload, follows, failed, error) "
            "VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            _rows(pattern, count),
        )
    ws.close()


def _rows(pattern: dict[str, object], count: int) -> Iterator[tuple[object, ...]]:
    resource = str(pattern["resource"])
    payload = str(pattern["payload"])
    start = time.time()
    for i in range(count):
        model, name = f"recommender-{i % 5000}", f"Recommender {i}"
        moment = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(start + i // 100))
        stamp = f"{moment}.{i % 1_000_000:06d}+00:00"
        yield (
            str(uuid.UUID(int=i + 1, version=4)),
            str(uuid.UUID(int=i + 1, version=4)),
            pattern["webhook_id"],
            pattern["event"],
            stamp,
            stamp,
            resource.replace("MODEL", model).replace("NAME", name),
            pattern["related"],
            payload.replace("MODEL", model).replace("NAME", name),
            None,
            0,
            None,
        )


def load(path: str) -> None:
    """Runs in a fresh process: load every event, print the peak memory in bytes."""
    from hooklab.workspace import Workspace

    ws = Workspace(path)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    started = time.perf_counter()
    frame = ws.events()
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    assert frame["payload"].iloc[-1]["body"]["model"].startswith("recommender-")
    print(json.dumps({"rows": len(frame), "before": before, "peak": peak, "seconds": seconds}))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()))
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--keep", type=Path, default=None, help="reuse or keep the file here")
    parser.add_argument("--load", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.load:
        load(args.load)
        return 0

    folder = args.keep or Path(tempfile.mkdtemp(prefix="hooklab-bench-"))
    path = folder / "hooklab.db"
    try:
        if not path.exists():
            started = time.perf_counter()
            build(path, args.events)
            print(f"built {args.events:,} events in {time.perf_counter() - started:.0f} s")
        size = path.stat().st_size
        child = subprocess.run(
            [sys.executable, __file__, "--load", str(path)],
            capture_output=True,
            text=True,
            check=True,
        )
        result = json.loads(child.stdout.strip().splitlines()[-1])
    finally:
        if args.keep is None:
            shutil.rmtree(folder, ignore_errors=True)
    peak = result["peak"]
    print(f"Workspace.events() of {result['rows']:,} stored events, in {result['seconds']:.1f} s")
    print(f"  SQLite file:        {size / 1e6:>8,.0f} MB")
    print(f"  process before:     {result['before'] / 1e6:>8,.0f} MB (Python, pandas, hooklab)")
    print(f"  process peak:       {peak / 1e6:>8,.0f} MB")
    print(f"  peak / 2 GB budget: {peak / BUDGET_BYTES:.2f} (target: below 1.00)")
    print(f"  peak / file size:   {peak / size:.2f}")
    return 0 if peak < BUDGET_BYTES else 1


if __name__ == "__main__":
    raise SystemExit(main())
