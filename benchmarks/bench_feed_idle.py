"""What an EventFeed costs while nothing arrives: the CPU time of an idle event loop with feeds
following a workspace of 100,000 stored events, as a ratio to the same loop without them.

A kernel runs its loop all day; a feed looks at the store every half second (one query of the
newest event number), so at rest it should cost next to nothing. Both loops run in this process,
alternating, for the same wall time; the figure is the extra CPU time per feed per second.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from hooklab import HookRequest, Workspace
from hooklab.core.examples import DYNAMIC_TEMPLATE
from hooklab.notebook.widgets import EventFeed

STORED = 100_000
FEEDS = 4
SECONDS = 5.0
ROUNDS = 3


def fill(path: Path) -> Workspace:
    ws = Workspace(path)
    hook = ws.create_webhook("models", DYNAMIC_TEMPLATE)
    outcomes = [
        ws.process(hook.slug, HookRequest.fake(method="POST", form={"model": str(n)}))
        for n in range(STORED)
    ]
    ws.record(outcomes)
    return ws


async def idle(ws: Workspace | None) -> float:
    """CPU seconds this process spends while its loop idles for SECONDS, with FEEDS feeds
    following `ws` (or none)."""
    feeds = [EventFeed(ws, interval=0.5) for _ in range(FEEDS)] if ws is not None else []
    started = time.process_time()
    await asyncio.sleep(SECONDS)
    spent = time.process_time() - started
    for feed in feeds:
        assert feed.following
        feed.close()
    return spent


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        ws = fill(Path(folder) / "hooklab.db")
        bare, following = [], []
        for _ in range(ROUNDS):
            bare.append(asyncio.run(idle(None)))
            following.append(asyncio.run(idle(ws)))
        ws.close()
    base, feed = statistics.median(bare), statistics.median(following)
    per_feed_second = (feed - base) / FEEDS / SECONDS
    print(f"idle loop, no feed:        {base * 1000:8.2f} ms CPU in {SECONDS:.0f} s")
    print(f"idle loop, {FEEDS} feeds:        {feed * 1000:8.2f} ms CPU in {SECONDS:.0f} s")
    print(
        f"one feed at rest costs {per_feed_second * 1e6:.0f} µs of CPU per second, "
        f"{per_feed_second * 100:.3f}% of one core (over {STORED:,} stored events)"
    )


if __name__ == "__main__":
    main()
