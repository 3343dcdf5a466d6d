"""Replay on every core: worker processes that each compile the template once and render their
share of the requests, while the replaying process puts the results back in request order.

A worker sends back what the replaying process cannot make cheaply itself: a plain event's
values (the text the template rendered, the event's id, time and fields), or a whole outcome for
anything else (a failure, several events). The request stays where it was: each result is put
back with its own request and the replaying process's pipeline, so a `ReplayResult` made this
way is the one a single process makes, down to `.outcomes`.

Workers are started fresh, as `python -m hooklab.history.parallel` (not forked from a process
that may run a receiver's threads, and without running the caller's script again as
multiprocessing's spawn would), ignore the interrupt key, and are ended at once when the replay
stops early: a KeyboardInterrupt (or a notebook's interrupt) in the replaying process leaves no
worker behind.
"""

from __future__ import annotations

import contextlib
import gc
import os
import pickle
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from types import TracebackType
from typing import Any

from hooklab.core.events import uuid7
from hooklab.core.outcome import IdSource, Outcome
from hooklab.core.pipeline import Budgets, Pipeline, PlainEvent
from hooklab.core.request import HookRequest
from hooklab.core.times import Clock, utcnow
from hooklab.core.webhooks import Webhook

# Where a pool starts to pay, measured with benchmarks/bench_replay.py on two cores: starting
# the workers costs about half a second, which a replay wins back only when the rest of it
# would take a while in this process, and only on cores with time to spare: on a machine
# already busy with other work, workers only share out the time the replay had alone (20,000
# GitHub deliveries took 1.5 times as long with two workers as in one process, at a load of 4
# on two cores). Fast templates stay in one process however many requests: 20,000 of the
# seed's form posts took 1.6 times as long with two workers.
PARALLEL_FROM = 2_000  # requests: fewer are done before the workers would have started
PARALLEL_SECONDS = 1.5  # the rest, estimated from the first requests, takes at least this long
PARALLEL_SAMPLE_SECONDS = 0.05  # the first requests rendered here to estimate it, at least

# A plain event's values after its pipeline and request, as a worker sends them.
Plain = tuple[Any, ...]
_new_plain = tuple.__new__


def cores() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def idle_cores() -> int:
    """Cores with nothing to run, by the load of the last minute (this process's own work,
    about one core, not counted as load)."""
    try:
        load = os.getloadavg()[0]
    except OSError:  # not known here
        return cores() - 1
    return max(0, int(cores() - max(load - 1.0, 0.0)))


def may_pool(
    requests: Sequence[HookRequest], clock: Clock, new_id: IdSource, *, save: bool = False
) -> bool:
    """Whether a replay of these requests may render in workers: only when its clock and ids
    are the defaults (a deterministic workspace's come from one process, in order), it is not
    saved, and it is long enough for a pool's start to be won back (`workers_for` decides)."""
    return not save and clock is utcnow and new_id is uuid7 and len(requests) >= PARALLEL_FROM


def workers_for(seconds_left: float) -> int:
    """How many workers the rest of a replay gains from, given how long it would take in this
    process: 0 when it goes as fast here."""
    if seconds_left < PARALLEL_SECONDS:
        return 0
    idle = idle_cores()
    return idle if idle >= 2 else 0


class ReplayPool:
    """Workers rendering for the pipelines given (one per webhook id; the key `None` for a
    replay through one webhook whatever captured the request). Use it as a context manager:
    leaving it ends the workers, at once if it is left by an exception.

    Each worker is `python -m hooklab.history.parallel` on pipes: it compiles the templates,
    then renders the chunks it is sent, in turn, until it is sent `None` or its input closes
    (as when this process dies). Chunk `i` goes to worker `i % workers`, so their results are
    read back in order."""

    def __init__(self, webhooks: dict[str | None, Webhook], budgets: Budgets, workers: int) -> None:
        self.webhooks = webhooks
        env = dict(os.environ)
        root = str(Path(__file__).resolve().parent.parent.parent)  # where hooklab is imported
        env["PYTHONPATH"] = os.pathsep.join([root, *filter(None, [env.get("PYTHONPATH")])])
        self._workers: list[subprocess.Popen[bytes]] = []
        try:
            for _ in range(workers):
                worker = subprocess.Popen(
                    [sys.executable, "-m", "hooklab.history.parallel"],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    env=env,
                )
                self._workers.append(worker)
                _send(worker, (webhooks, budgets))
        except BaseException:
            self._end(kill=True)
            raise

    @property
    def pids(self) -> list[int]:
        return [worker.pid for worker in self._workers]

    def __enter__(self) -> ReplayPool:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._end(kill=kind is not None)

    def _end(self, *, kill: bool) -> None:
        for worker in self._workers:
            if kill:
                worker.kill()
            else:
                try:
                    _send(worker, None)
                except OSError:
                    worker.kill()
        for worker in self._workers:
            for pipe in (worker.stdin, worker.stdout):
                if pipe is not None:
                    with contextlib.suppress(OSError):  # a buffer left for a closed pipe
                        pipe.close()
            worker.wait()

    def drafts(
        self,
        chunks: Sequence[Sequence[tuple[HookRequest, str | None]]],
        pipelines: dict[str | None, Pipeline],
    ) -> Iterator[list[Outcome | PlainEvent]]:
        """Each chunk's drafts (what `Pipeline.draft` gives), in order, as the workers finish
        them; `pipelines` are this process's, by the same keys as the workers'."""
        fixed = None in self.webhooks
        count = len(self._workers)
        feeders = [
            threading.Thread(target=_feed, args=(worker, chunks[number::count], fixed), daemon=True)
            for number, worker in enumerate(self._workers)
        ]
        for feeder in feeders:
            feeder.start()
        for number, chunk in enumerate(chunks):
            found = _receive(self._workers[number % count])
            items: list[Outcome | PlainEvent] = []
            for (request, webhook_id), result in zip(chunk, found, strict=True):
                if isinstance(result, Outcome):
                    items.append(replace(result, request=request))
                else:
                    pipeline = pipelines[None if fixed else webhook_id]
                    items.append(_new_plain(PlainEvent, (pipeline, request, *result)))
            yield items
        for feeder in feeders:
            feeder.join()


def _send(worker: subprocess.Popen[bytes], message: Any) -> None:
    assert worker.stdin is not None
    pickle.dump(message, worker.stdin, protocol=pickle.HIGHEST_PROTOCOL)
    worker.stdin.flush()


def _receive(worker: subprocess.Popen[bytes]) -> list[Plain | Outcome]:
    assert worker.stdout is not None
    try:
        found: list[Plain | Outcome] = pickle.load(worker.stdout)
    except EOFError:
        raise RuntimeError(
            f"a replay worker stopped (exit status {worker.wait()}); see its error above"
        ) from None
    return found


def _fields(request: HookRequest) -> tuple[Any, ...]:
    """A request as a tuple, which pickles in a fraction of the time its dataclass takes."""
    return (
        request.method, request.path, request.query, request.headers, request.body,
        request.received, request.client, request.id,
    )  # fmt: skip


def _feed(
    worker: subprocess.Popen[bytes],
    chunks: Sequence[Sequence[tuple[HookRequest, str | None]]],
    fixed: bool,
) -> None:
    """Send a worker its chunks, each request with the key of its pipeline; a worker that was
    ended (the replay stopped early) takes no more."""
    try:
        for chunk in chunks:
            _send(worker, [(*_fields(request), None if fixed else key) for request, key in chunk])
    except (OSError, ValueError):  # a closed pipe: the replay is over
        pass


_pipelines: dict[str | None, Pipeline] = {}


def _work() -> None:
    """A worker's life: compile each webhook's template once, then render the chunks it is
    sent until there are no more. The interrupt key is the replaying process's, which ends
    the workers; what a template prints goes to stderr, not into the results."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    gc.disable()  # a worker makes only acyclic objects, and lives as long as one replay
    tasks = os.fdopen(os.dup(0), "rb")
    results = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    webhooks, budgets = pickle.load(tasks)
    _pipelines.update({key: Pipeline(hook, budgets=budgets) for key, hook in webhooks.items()})
    while True:
        try:
            chunk = pickle.load(tasks)
        except EOFError:
            return
        if chunk is None:
            return
        pickle.dump(_render(chunk), results, protocol=pickle.HIGHEST_PROTOCOL)
        results.flush()


def _render(chunk: list[tuple[Any, ...]]) -> list[Plain | Outcome]:
    """In a worker: a chunk's drafts (each request's fields, then its pipeline's key), without
    their requests (the replaying process has them)."""
    found: list[Plain | Outcome] = []
    for *fields, key in chunk:
        item = _pipelines[key].draft(HookRequest(*fields))
        if isinstance(item, Outcome):
            found.append(replace(item, request=None))
        else:
            found.append(tuple(item)[2:])
    return found


if __name__ == "__main__":
    _work()
