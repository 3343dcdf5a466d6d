"""The event feed follows the workspace: what another process stores on the same file
appears within about a second, and nothing more once the feed is closed."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

from hooklab import HookRequest
from hooklab.core.examples import DYNAMIC_TEMPLATE as SEED
from hooklab.notebook.widgets import EventFeed
from hooklab.workspace import Workspace

# Another process receives a request on the same file, as a second notebook or `hooklab serve`
# would.
OTHER_PROCESS = """
import sys
from hooklab import HookRequest, Workspace
ws = Workspace(sys.argv[1])
hook = ws.get_webhook("models")
ws.receive(hook.slug, HookRequest.fake(method="POST", form={"model": sys.argv[2]}))
ws.close()
"""


async def _receive_elsewhere(path: Path, model: str) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", OTHER_PROCESS, str(path), model, stdout=subprocess.DEVNULL
    )
    assert await process.wait() == 0


async def _until(condition: object, timeout: float) -> bool:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        if callable(condition) and condition():
            return True
        await asyncio.sleep(0.05)
    return False


def test_the_feed_shows_what_another_process_stores_and_stops_when_closed(
    tmp_path: Path,
) -> None:
    path = tmp_path / "hooklab.db"
    ws = Workspace(path)
    ws.create_webhook("models", SEED)

    async def scenario() -> EventFeed:
        feed = EventFeed(ws, interval=0.2)
        assert feed.following and feed.received == 0
        await _receive_elsewhere(path, "from-another-process")
        assert await _until(lambda: feed.received == 1, timeout=5)
        assert "product.models.from-another-process" in feed.table.value
        feed.close()
        assert not feed.following
        await _receive_elsewhere(path, "after-close")
        await asyncio.sleep(0.6)  # three intervals: a feed still looking would have seen it
        return feed

    feed = asyncio.run(asyncio.wait_for(scenario(), 60))
    assert feed.received == 1 and "after-close" not in feed.table.value
    ws.close()


def test_a_feed_for_one_webhook_skips_the_others(tmp_path: Path) -> None:
    ws = Workspace(tmp_path / "hooklab.db")
    models = ws.create_webhook("models", SEED)
    other = ws.create_webhook("other", SEED)
    feed = EventFeed(ws, webhook="models")
    ws.receive(other.slug, HookRequest.fake(method="POST", form={"model": "elsewhere"}))
    ws.receive(models.slug, HookRequest.fake(method="POST", form={"model": "here"}))
    assert feed.poll() == 1
    assert [row["resource"] for row in feed.rows] == ["product.models.here"]
    assert feed.poll() == 0  # nothing new: nothing counted twice
    feed.close()
    ws.close()


def test_a_feed_opened_on_a_long_history_counts_it_from_the_indexes(tmp_path: Path) -> None:
    ws = Workspace(tmp_path / "hooklab.db")
    models = ws.create_webhook("models", SEED)
    other = ws.create_webhook("other", SEED)
    for hook, request in [
        *[(models, HookRequest.fake(method="POST", form={"model": str(n)})) for n in range(30)],
        (models, _failing()),
        (other, HookRequest.fake(method="POST", form={"model": "x"})),
        (other, _failing()),
    ]:
        ws.receive(hook.slug, request)
    everything, one = EventFeed(ws, limit=5), EventFeed(ws, webhook="models", limit=5)
    # The whole history counted, only the newest shown.
    assert (everything.received, everything.failed, len(everything.rows)) == (33, 2, 5)
    assert (one.received, one.failed, len(one.rows)) == (31, 1, 5)
    ws.receive(models.slug, _failing())
    assert everything.poll() == one.poll() == 1
    assert (everything.received, everything.failed, one.received, one.failed) == (34, 3, 32, 2)
    everything.close()
    one.close()
    ws.close()


def _failing() -> HookRequest:
    return HookRequest.fake(method="POST", headers={"Content-Type": "application/json"}, body="{")
