"""Group commit: concurrent requests written in one transaction, each answered only after it.

Writing each request in its own transaction would make SQLite, not the template, the limit.
Instead each request waits on a future, and everything that became ready in two turns of the
event loop is written together at the start of the third. A future resolves only after its
batch has committed, so no request is answered before it is durable.

Why two turns: Tornado reads a request over several turns of the loop, so requests sent at the
same moment become ready a turn apart. Under wrk's 16 connections one turn gathered 9 requests
a transaction, two gathered 16 (all of them), and the commit's cost per request fell by a third
(benchmarks/bench_receiver.py). A request alone waits one turn more: microseconds.

A write to SQLite runs on the loop itself and returns when it has committed. A write to
PostgreSQL returns an awaitable: up to `parallel` batches are in flight at once (each on its own
connection), and whatever becomes ready while all are busy gathers into the next, written as
soon as one commits. A commit that waits for the disk takes milliseconds; with two in flight a
request no longer waits for the batch before its own to reach the disk first.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import sqlite3
from collections.abc import Awaitable, Callable, Sequence

from hooklab.core.outcome import Outcome
from hooklab.store.contract import StoreUnavailable

log = logging.getLogger(__name__)

# Called right after the transaction with None, or with the error that stopped the write.
Committed = Callable[[Exception | None], object]
Waiter = asyncio.Future[None] | Committed


class GroupCommit:
    """Batches `commit(outcome)` calls made on one event loop into single writes.

    `write` stores a sequence of outcomes in one transaction and raises if it could not, or
    returns an awaitable that does (see `hooklab.store.contract.Writer`); `timeout` bounds how
    long such a write may take before its requests are refused.
    """

    def __init__(
        self,
        write: Callable[[Sequence[Outcome]], Awaitable[None] | object],
        *,
        on_written: Callable[[int], object] | None = None,
        turns: int = 2,
        timeout: float = 10.0,
        parallel: int = 1,
    ) -> None:
        self._write = write
        self.timeout = timeout
        self.parallel = parallel
        self._in_flight: set[asyncio.Task[None]] = set()
        self._on_written = on_written
        self.turns = turns
        self._pending: list[Outcome] = []
        self._waiting: list[Waiter] = []
        self._scheduled = False
        self.batches = 0
        self.written = 0

    @property
    def pending(self) -> int:
        return len(self._pending)

    @property
    def busy(self) -> bool:
        """Whether a write is in flight or waiting to start."""
        return bool(self._pending) or bool(self._in_flight)

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

    def _join(self, outcome: Outcome, waiter: Waiter) -> None:
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
        """Write everything pending now, in one transaction, or start to (an awaitable write;
        when `parallel` are in flight, what comes meanwhile waits for one to finish). Safe to
        call at any time."""
        self._scheduled = False
        if len(self._in_flight) >= self.parallel:
            return  # a write in flight flushes again when it is done
        batch, self._pending = self._pending, []
        waiting, self._waiting = self._waiting, []
        if not batch:
            return
        try:
            started = self._write(batch)
        except Exception as exc:
            self._answer(waiting, self._refused(batch, exc))
            return
        if inspect.isawaitable(started):
            task = asyncio.ensure_future(self._await(started, batch, waiting))
            self._in_flight.add(task)
            task.add_done_callback(self._in_flight.discard)
            return
        self._answer(waiting, self._stored(batch))

    async def drain(self) -> None:
        """Write what is pending and wait for every write in flight to finish."""
        while self.busy:
            self.flush()
            if self._in_flight:
                await asyncio.wait(set(self._in_flight))

    async def _await(
        self, started: Awaitable[object], batch: list[Outcome], waiting: list[Waiter]
    ) -> None:
        try:
            await asyncio.wait_for(started, self.timeout)
        except asyncio.TimeoutError:
            error = StoreUnavailable(f"the store did not answer within {self.timeout:g} s")
            errors: list[Exception | None] = [error] * len(batch)
        except Exception as exc:
            errors = await self._refused_async(batch, exc)
        else:
            errors = self._stored(batch)
        # This write no longer counts as in flight: the flush below may start the next.
        self._in_flight.discard(asyncio.current_task())
        self._answer(waiting, errors)
        if self._pending:
            asyncio.get_running_loop().call_soon(self.flush)

    def _answer(self, waiting: list[Waiter], errors: list[Exception | None]) -> None:
        for waiter, error in zip(waiting, errors, strict=True):
            if isinstance(waiter, asyncio.Future):
                _resolve(waiter, error)
                continue
            try:
                waiter(error)
            except Exception:
                log.exception("hooklab could not answer a stored request")

    def _stored(self, batch: list[Outcome]) -> list[Exception | None]:
        self.batches += 1
        self.written += len(batch)
        if self._on_written is not None:
            self._on_written(len(batch))
        return [None] * len(batch)

    def _refused(self, batch: list[Outcome], exc: Exception) -> list[Exception | None]:
        """After a failed write: every outcome gets the error when the store refuses all
        alike; otherwise each is written alone, so that one request the store refuses (a
        duplicate id, a value it rejects) does not take the others down."""
        refused = _all_refused(batch, exc)
        if refused is not None:
            return refused
        errors: list[Exception | None] = []
        for outcome in batch:
            try:
                alone = self._write([outcome])
                if inspect.isawaitable(alone):
                    raise TypeError("an awaitable write is retried by _refused_async")
            except Exception as error:
                errors.append(error)
            else:
                errors.extend(self._stored([outcome]))
        return errors

    async def _refused_async(self, batch: list[Outcome], exc: Exception) -> list[Exception | None]:
        refused = _all_refused(batch, exc)
        if refused is not None:
            return refused
        errors: list[Exception | None] = []
        # One deadline for them all: each sender of the batch waits for the whole loop.
        deadline = asyncio.get_running_loop().time() + self.timeout
        for outcome in batch:
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                late = StoreUnavailable(f"the store did not answer within {self.timeout:g} s")
                errors.append(late)
                continue
            try:
                alone = self._write([outcome])
                if inspect.isawaitable(alone):
                    await asyncio.wait_for(alone, left)
            except Exception as error:
                errors.append(error)
            else:
                errors.extend(self._stored([outcome]))
        return errors


def _all_refused(batch: list[Outcome], exc: Exception) -> list[Exception | None] | None:
    """Every outcome's error when the batch is refused as a whole (one request, or a store
    that refuses all alike), or None when each should be written alone."""
    if len(batch) == 1 or _refuses_all(exc):
        # Each waiter gets the error; the receiver tells the person once a run.
        log.debug("hooklab could not store %d request(s): %s", len(batch), exc)
        return [exc] * len(batch)
    return None


def _refuses_all(exc: Exception) -> bool:
    """A store that does not answer, or a locked, read-only or full file, refuses every
    request alike: no use writing them one by one."""
    return isinstance(exc, (StoreUnavailable, asyncio.TimeoutError, sqlite3.OperationalError))


def _resolve(done: asyncio.Future[None], error: Exception | None) -> None:
    if done.done():
        return
    if error is None:
        done.set_result(None)
    else:
        done.set_exception(error)
