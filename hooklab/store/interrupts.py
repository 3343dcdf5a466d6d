"""Ctrl-C held back while a read puts back what it took: a reader closed under the thread still
reading it, or a store left with its connection closed, would outlast the interrupt."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType


@contextmanager
def interrupts_held() -> Iterator[None]:
    """Ctrl-C held back until the block is done, then raised (by the handler it would have
    met). Catching KeyboardInterrupt around each wait leaves gaps where a second Ctrl-C gets
    through, and one that interrupts `Thread.join` can leave `is_alive()` false while the
    thread still runs. Only the main thread receives signals: elsewhere, nothing to hold."""
    if (
        threading.current_thread() is not threading.main_thread()
        or signal.getsignal(signal.SIGINT) is None  # a handler Python cannot put back
    ):
        yield
        return
    held: list[tuple[int, FrameType | None]] = []
    previous = signal.signal(signal.SIGINT, lambda number, frame: held.append((number, frame)))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if held and callable(previous):
            previous(*held[0])
        elif held and previous == signal.SIG_DFL:
            raise KeyboardInterrupt
