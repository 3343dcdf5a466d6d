"""Batches read in a thread of their own, ahead of the thread that uses them: every batch in
order, the reader's error raised where the batches are used, and the reader closed in its own
thread however the reading ends, before anything can close the connection under it."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator

import pytest

from hooklab.store.readahead import DEPTH, ReadAhead


class Source:
    """A query's batches as a driver gives them, with where each was read and when closed."""

    def __init__(self, count: int, fail_at: int | None = None) -> None:
        self.count, self.fail_at = count, fail_at
        self.read_in: set[str] = set()
        self.read = 0
        self.closed_in: str | None = None
        self.batches = self._batches()

    def _batches(self) -> Iterator[int]:
        try:
            for number in range(self.count):
                self.read_in.add(threading.current_thread().name)
                self.read += 1
                if number == self.fail_at:
                    raise ValueError(f"row {number}: a value the driver cannot take")
                yield number
        finally:
            self.closed_in = threading.current_thread().name


def pulling() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "hooklab-read-ahead"]


def test_every_batch_comes_in_order_read_and_closed_in_the_reading_thread() -> None:
    source = Source(50)
    assert list(ReadAhead(source.batches)) == list(range(50))
    assert source.read_in == {"hooklab-read-ahead"} and source.closed_in == "hooklab-read-ahead"
    assert not pulling()


def test_the_readers_error_is_raised_where_the_batches_are_used() -> None:
    source = Source(10, fail_at=4)
    taken = []
    with pytest.raises(ValueError, match="row 4: a value the driver cannot take") as raised:
        for batch in ReadAhead(source.batches):
            taken.append(batch)
    assert taken == [0, 1, 2, 3]
    # Its traceback is the reader's own: it shows where the value was met.
    assert raised.traceback[-1].name == "_batches"
    assert source.closed_in == "hooklab-read-ahead" and not pulling()


def test_giving_up_half_way_stops_the_reader_and_closes_it_before_returning() -> None:
    source = Source(1000)
    ahead = ReadAhead(source.batches)
    for batch in ahead:
        if batch == 3:
            break
    ahead.stop()  # as the snapshot does before it closes the connection
    assert source.closed_in == "hooklab-read-ahead" and not pulling()
    # The reader went no further than the batches it could hold for the user.
    assert source.read <= 4 + DEPTH + 1


def test_stopping_a_reader_that_waits_for_room_returns_at_once() -> None:
    source = Source(1000)
    ahead = ReadAhead(source.batches)
    while source.read < DEPTH + 1:  # the reader fills its room and waits
        time.sleep(0.01)
    ahead.stop()  # returns, rather than hanging on the full room
    assert source.closed_in == "hooklab-read-ahead" and not pulling()


class SlowSource(Source):
    """A driver whose next batch takes a while to come."""

    def _batches(self) -> Iterator[int]:
        try:
            yield 0
            time.sleep(0.4)
            yield 1
        finally:
            self.closed_in = threading.current_thread().name


def test_ctrl_c_pressed_again_and_again_while_stopping_still_waits_for_the_reader() -> None:
    # The snapshot closes the connection once `stop` is done: a reader still reading then
    # crashes the process. However many interrupts come, `stop` must not end before it.
    armed = [True]

    def interrupt(number: int, frame: object) -> None:
        if armed[0]:
            raise KeyboardInterrupt

    def press(reader: threading.Thread, go: threading.Event) -> None:
        go.wait()
        time.sleep(0.05)  # `stop` is waiting by now
        for _ in range(1000):
            if not reader.is_alive():
                return
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.0005)

    previous = signal.signal(signal.SIGINT, interrupt)
    try:
        for _ in range(3):
            armed[0] = True
            source = SlowSource(2)
            ahead = ReadAhead(source.batches)
            batches = iter(ahead)
            assert next(batches) == 0
            go = threading.Event()
            presser = threading.Thread(target=press, args=(ahead._thread, go))
            presser.start()
            with pytest.raises(KeyboardInterrupt):
                try:
                    go.set()
                    ahead.stop()
                    time.sleep(1)
                finally:
                    armed[0] = False
            presser.join()
            assert source.closed_in == "hooklab-read-ahead", "stopped before the reader closed"
    finally:
        signal.signal(signal.SIGINT, previous)
