"""Group commit: concurrent requests written in one transaction, each answered only after it.

Writing each request in its own transaction would make SQLite, not the template, the limit.
Instead each request waits on a future while one writer thread stores whatever has gathered:
the first request of a quiet spell is written at once, and those that arrive while a write is
in progress go together in the next. A future resolves only after its batch has committed, so
no request is answered before it is durable.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor

from hooklab.pipeline import Outcome

log = logging.getLogger(__name__)

Batch = list[tuple[Outcome, "asyncio.Future[None]"]]


class GroupCommit:
    """Batches `commit(outcome)` calls made on one event loop into single writes on a thread.

    `write` stores a sequence of outcomes in one transaction and raises if it could not.
    `after_batch` (optional) runs on the writer thread after each batch, still off the loop.
    """

    def __init__(
        self,
        write: Callable[[Sequence[Outcome]], object],
        *,
        after_batch: Callable[[], object] | None = None,
        on_idle: Callable[[], object] | None = None,
    ) -> None:
        self._write = write
        self._after_batch = after_batch
        self._on_idle = on_idle
        self._pending: Batch = []
        self._writing: Future[None] | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.batches = 0
        self.written = 0

    @property
    def pending(self) -> int:
        return len(self._pending)

    def commit(self, outcome: Outcome) -> asyncio.Future[None]:
        """A future resolved once `outcome` is committed (or failed with the write's error)."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        self._pending.append((outcome, done))
        if self._writing is None:
            self._loop = loop
            self._start()
        return done

    def _start(self) -> None:
        batch, self._pending = self._pending, []
        if self._executor is None:
            self._executor = ThreadPoolExecutor(1, thread_name_prefix="hooklab-writer")
        writing = self._executor.submit(self._write_batch, batch)
        self._writing = writing
        loop = self._loop
        assert loop is not None
        writing.add_done_callback(
            lambda _: loop.call_soon_threadsafe(self._finished, batch, writing)
        )

    def _write_batch(self, batch: Batch) -> None:
        self._write([outcome for outcome, _ in batch])
        if self._after_batch is not None:
            self._after_batch()

    def _finished(self, batch: Batch, writing: Future[None]) -> None:
        if self._writing is writing:
            self._writing = None
        _resolve(batch, writing.exception())
        if not writing.exception():
            self.batches += 1
            self.written += len(batch)
        if self._writing is None:
            if self._pending:
                self._start()
            elif self._on_idle is not None:
                self._on_idle()

    def flush(self) -> None:
        """Wait for the write in progress, then write what is pending, here and now."""
        writing = self._writing
        if writing is not None:
            with contextlib.suppress(Exception):  # its own callers get the error
                writing.result()
        batch, self._pending = self._pending, []
        if batch:
            try:
                self._write([outcome for outcome, _ in batch])
            except Exception as exc:
                _resolve(batch, exc)
            else:
                _resolve(batch, None)
                self.batches += 1
                self.written += len(batch)

    def close(self) -> None:
        """Flush, and end the writer thread."""
        self.flush()
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None
        self._writing = None


def _resolve(batch: Batch, error: BaseException | None) -> None:
    if error is not None:
        log.error("hooklab could not store %d request(s): %s", len(batch), error)
    for _, done in batch:
        if done.done():
            continue
        if error is None:
            done.set_result(None)
        else:
            done.set_exception(error)
