"""How `hooklab serve` writes to SQLite: each batch on the event loop, checkpoints beside it.

The write runs on the loop itself. A writer thread was measured too (benchmarks/): with the GIL
it lost twice over, to handing batches between threads and to the two threads taking turns.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Protocol

from hooklab.core.outcome import Outcome

log = logging.getLogger(__name__)


class SqliteStore(Protocol):
    """What the writer uses of `hooklab.store.sqlite.SqliteStore`."""

    path: str

    def record(self, outcomes: Iterable[Outcome]) -> int: ...
    def checkpoint(self) -> None: ...
    def set_autocheckpoint(self, pages: int) -> None: ...
    def count(self, table: str) -> int: ...
    def attach(self) -> None: ...
    def detach(self) -> None: ...


class SqliteWriter:
    """Writes batches on the calling thread and keeps SQLite's checkpoints off it."""

    parallel = 1  # a write returns when it has committed: never more than one in flight

    def __init__(self, store: SqliteStore, *, every: int = 500) -> None:
        self.store = store
        self.checkpoints = None if store.path == ":memory:" else BackgroundCheckpoint(store, every)
        store.attach()  # its connection is the writer's until closed: reads go beside it
        self._attached = True

    def write(self, outcomes: Sequence[Outcome]) -> None:
        self.store.record(outcomes)

    def written(self, count: int) -> None:
        if self.checkpoints is not None:
            self.checkpoints.written(count)

    def tick(self) -> None:
        # For what other writers (a replay in the notebook, say) add to the WAL while the
        # receiver is quiet.
        if self.checkpoints is not None:
            self.checkpoints.start()

    async def ping(self) -> None:
        self.store.count("settings")

    def close(self) -> None:
        if self.checkpoints is not None:
            self.checkpoints.close()
            self.checkpoints = None
        if self._attached:
            self._attached = False
            self.store.detach()


class BackgroundCheckpoint:
    """SQLite checkpoints on a thread of their own, so that the loop never waits for them.

    A checkpoint copies the WAL into the database file and syncs both; SQLite would otherwise
    run it inside whichever commit crosses 1000 pages, on the event loop. The thread spends
    its time in SQLite without the GIL, so it runs beside the loop rather than taking turns.
    """

    def __init__(self, store: SqliteStore, every: int = 500) -> None:
        self.store = store
        self.every = every
        self._since = 0
        self._running: Future[None] | None = None
        self._executor: ThreadPoolExecutor | None = None
        store.set_autocheckpoint(0)

    def written(self, count: int) -> None:
        """Count requests written; start a checkpoint every `every` of them."""
        self._since += count
        if self._since >= self.every:
            self.start()

    def start(self) -> None:
        """Start a checkpoint unless one is running."""
        if self._running is not None and not self._running.done():
            return
        self._since = 0
        if self._executor is None:
            self._executor = ThreadPoolExecutor(1, thread_name_prefix="hooklab-checkpoint")
        self._running = self._executor.submit(self._checkpoint)

    def _checkpoint(self) -> None:
        try:
            self.store.checkpoint()
        except Exception as exc:  # the WAL keeps every commit; the next checkpoint catches up
            log.warning("hooklab could not checkpoint its database: %s", exc)

    def close(self) -> None:
        """Wait for a checkpoint in progress and give checkpoints back to SQLite."""
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None
        self.store.set_autocheckpoint(1000)
