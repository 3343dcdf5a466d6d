"""Group commit: concurrent requests written in one transaction, each answered only after it.

Writing each request in its own transaction would make SQLite, not the template, the limit.
Instead each request waits on a future, and everything that became ready in two turns of the
event loop is written together at the start of the third. A future resolves only after its
batch has committed, so no request is answered before it is durable.

Why two turns: Tornado reads a request over several turns of the loop, so requests sent at the
same moment become ready a turn apart. Under wrk's 16 connections one turn gathered 9 requests
a transaction, two gathered 16 (all of them), and the commit's cost per request fell by a third
(benchmarks/bench_receiver.py). A request alone waits one turn more: microseconds.

The write runs on the loop itself. A writer thread was measured too (benchmarks/): with the GIL
it lost twice over, to handing batches between threads and to the two threads taking turns.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor

from hooklab.core.outcome import Outcome
from hooklab.store.sqlite import Store

log = logging.getLogger(__name__)

# Called right after the transaction with None, or with the error that stopped the write.
Committed = Callable[[Exception | None], object]


class GroupCommit:
    """Batches `commit(outcome)` calls made on one event loop into single writes.

    `write` stores a sequence of outcomes in one transaction and raises if it could not.
    """

    def __init__(
        self,
        write: Callable[[Sequence[Outcome]], object],
        *,
        on_written: Callable[[int], object] | None = None,
        turns: int = 2,
    ) -> None:
        self._write = write
        self._on_written = on_written
        self.turns = turns
        self._pending: list[Outcome] = []
        self._waiting: list[asyncio.Future[None] | Committed] = []
        self._scheduled = False
        self.batches = 0
        self.written = 0

    @property
    def pending(self) -> int:
        return len(self._pending)

    def commit(self, outcome: Outcome) -> asyncio.Future[None]:
        """A future resolved once `outcome` is committed (or failed with the write's error)."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._join(outcome, done)
        return done

    def commit_then(self, outcome: Outcome, committed: Committed) -> None:
        """Call `committed(None)` right after `outcome` is committed, or `committed(error)`.

        What the receiver uses: a future would answer each request one loop turn later, and
        cost a scheduled callback per request.
        """
        self._join(outcome, committed)

    def _join(self, outcome: Outcome, waiter: asyncio.Future[None] | Committed) -> None:
        self._pending.append(outcome)
        self._waiting.append(waiter)
        if not self._scheduled:
            self._scheduled = True
            # Every request that becomes ready in this turn of the loop or the next joins.
            asyncio.get_running_loop().call_soon(self._gather, self.turns - 1)

    def _gather(self, turns: int) -> None:
        if turns > 0:
            asyncio.get_running_loop().call_soon(self._gather, turns - 1)
        else:
            self.flush()

    def flush(self) -> None:
        """Write everything pending now, in one transaction. Safe to call at any time."""
        self._scheduled = False
        batch, self._pending = self._pending, []
        waiting, self._waiting = self._waiting, []
        if not batch:
            return
        errors = self._write_batch(batch)
        for waiter, error in zip(waiting, errors, strict=True):
            if isinstance(waiter, asyncio.Future):
                _resolve(waiter, error)
                continue
            try:
                waiter(error)
            except Exception:
                log.exception("hooklab could not answer a stored request")

    def _write_batch(self, batch: list[Outcome]) -> list[Exception | None]:
        """Write the batch in one transaction; if that fails, write each outcome alone, so
        that one request the store refuses (a duplicate id, a value SQLite rejects) does not
        take the others down. Returns the error of each outcome, or None where it is stored."""
        try:
            self._write(batch)
        except Exception as exc:
            # A locked, read-only or full file refuses every request alike: no use retrying.
            if len(batch) == 1 or isinstance(exc, sqlite3.OperationalError):
                # Each waiter gets the error; the receiver tells the person once a run.
                log.debug("hooklab could not store %d request(s): %s", len(batch), exc)
                return [exc] * len(batch)
            return [self._write_batch([outcome])[0] for outcome in batch]
        self.batches += 1
        self.written += len(batch)
        if self._on_written is not None:
            self._on_written(len(batch))
        return [None] * len(batch)


def _resolve(done: asyncio.Future[None], error: Exception | None) -> None:
    if done.done():
        return
    if error is None:
        done.set_result(None)
    else:
        done.set_exception(error)


class BackgroundCheckpoint:
    """SQLite checkpoints on a thread of their own, so that the loop never waits for them.

    A checkpoint copies the WAL into the database file and syncs both; SQLite would otherwise
    run it inside whichever commit crosses 1000 pages, on the event loop. The thread spends
    its time in SQLite without the GIL, so it runs beside the loop rather than taking turns.
    """

    def __init__(self, store: Store, *, every: int = 500) -> None:
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
        """Start a checkpoint unless one is running. Also called on a timer, for what other
        writers (a replay in the notebook, say) add to the WAL while the receiver is quiet."""
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
