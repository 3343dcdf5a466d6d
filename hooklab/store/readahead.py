"""Reading the next batches of a query while this thread works on the last.

ADBC's drivers read a batch with Python's lock let go, and Arrow's compute lets it go too, so
a thread that pulls the driver's batches runs beside the thread that turns each batch into
columns (times, labels, content types, names): a read then takes about as long as the
longer of the two, not their sum.

The pulling thread owns the query's reader from its first batch to its last: it alone reads
it, and it closes it. `stop` (called by whoever consumes the batches, when they are done or
give up, and by the snapshot before it closes the connection) waits for that thread, so the
connection is never closed under a read.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import Generic, TypeVar

from hooklab.store.interrupts import interrupts_held

Item = TypeVar("Item")

# Batches read and not yet taken, at most: enough to keep the driver busy, few enough that a
# read holds little more memory than without it.
DEPTH = 2
_END = object()


class ReadAhead(Generic[Item]):
    """The items of `source`, pulled in a thread of their own, at most `DEPTH` ahead."""

    def __init__(self, source: Iterator[Item]) -> None:
        self._source = source
        self._ready: queue.Queue[tuple[bool, object]] = queue.Queue(maxsize=DEPTH)
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._pull, name="hooklab-read-ahead", daemon=True)
        self._thread.start()

    def _pull(self) -> None:
        try:
            for item in self._source:
                if self._stopping.is_set():
                    return
                self._ready.put((True, item))
        except BaseException as error:  # the consumer raises it, with its traceback
            self._ready.put((False, error))
        else:
            self._ready.put((False, _END))
        finally:
            close = getattr(self._source, "close", None)
            if close is not None:
                close()  # in this thread: the reader is closed where it was read

    def __iter__(self) -> Iterator[Item]:
        try:
            while True:
                taken, item = self._ready.get()
                if taken:
                    yield item  # type: ignore[misc]
                elif item is _END:
                    return
                else:
                    raise item  # type: ignore[misc]
        finally:
            self.stop()

    def stop(self) -> None:
        """Stop pulling, and wait until the thread has closed the source. An interrupt that
        arrives meanwhile is raised once the thread is done (it takes one batch at most)."""
        with interrupts_held():
            self._stopping.set()
            while self._thread.is_alive():
                try:
                    while True:  # room for the item the thread may be waiting to put
                        self._ready.get_nowait()
                except queue.Empty:
                    pass
                self._thread.join(0.05)
