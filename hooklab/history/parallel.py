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

A replay that ends as it should leaves its workers waiting for the next one, for
`IDLE_SECONDS`: starting a worker costs about half a second of a core (its imports), which a
notebook replaying after every edit of a template would otherwise pay each time. They end when
that time is up, when `end_idle_workers()` is called, or when this process exits (their input
closes).
"""

from __future__ import annotations

import atexit
import contextlib
import gc
import os
import pickle
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from types import TracebackType
from typing import IO, Any

try:
    import fcntl
except ImportError:  # not on Windows
    fcntl = None  # type: ignore[assignment]

from hooklab.core.events import uuid7
from hooklab.core.outcome import IdSource, Outcome
from hooklab.core.pipeline import Budgets, Pipeline, PlainEvent
from hooklab.core.request import HookRequest
from hooklab.core.times import Clock, utcnow
from hooklab.core.webhooks import Webhook
from hooklab.history.cores import CpuMark, idle_cores

# Where a pool starts to pay, measured with benchmarks/bench_replay.py on two cores: starting
# the workers costs about half a second, which a replay wins back only when the rest of it
# would take a while in this process, and only on cores with time to spare: on a machine
# already busy with other work, workers only share out the time the replay had alone (20,000
# GitHub deliveries took 1.5 times as long with two workers as in one process, at a load of 4
# on two cores), so the cores must have sat idle while the first requests rendered here.
PARALLEL_FROM = 2_000  # requests: fewer are done before the workers would have started
PARALLEL_SECONDS = 1.5  # the rest, estimated from the first requests, takes at least this long
PARALLEL_SAMPLE_SECONDS = 0.1  # rendered here first: the rest's time, a request's, idle cores
# With workers already started (an earlier replay's, waiting), only handing the requests over
# and the results back is left to win back.
PARALLEL_SECONDS_WARM = 0.3
# Handing a request over and its result back costs this process time too: a template quicker
# than this per request replays as fast in one process, or faster (20,000 form posts at 16 µs
# each took 1.3 times as long in two workers, JSON at 37 µs as long either way; real GitHub
# deliveries at 60 µs took 0.55 of the time).
PARALLEL_PER_REQUEST = 40e-6
IDLE_SECONDS = 300.0  # how long a replay's workers wait for the next replay
READY_SECONDS = 5.0  # how long a waiting worker may take to take up the next replay
START_SECONDS = 120.0  # how long a new worker may take to start (its imports, on a busy machine)
PIPE_BYTES = 1 << 20  # what each pipe to and from a worker may hold (Linux's most, by default)
MESSAGE_REQUESTS = 250  # requests sent to a worker at once, at least: a message costs a few renders

# A plain event's values after its pipeline and request, as a worker sends them.
Plain = tuple[Any, ...]
_new_plain = tuple.__new__


def may_pool(
    requests: Sequence[HookRequest], clock: Clock, new_id: IdSource, *, save: bool = False
) -> bool:
    """Whether a replay of these requests may render in workers: only when its clock and ids
    are the defaults (a deterministic workspace's come from one process, in order), it is not
    saved, and it is long enough for a pool's start to be won back (`workers_for` decides)."""
    return not save and clock is utcnow and new_id is uuid7 and len(requests) >= PARALLEL_FROM


def workers_for(seconds_left: float, per_request: float, since: CpuMark | None = None) -> int:
    """How many workers the rest of a replay gains from, given how long it would take in this
    process, and each request (and `idle_cores(since)`): 0 when it goes as fast here."""
    if per_request < PARALLEL_PER_REQUEST:
        return 0
    idle = idle_cores(since)
    if idle < 2:
        return 0
    warm = len(_waiting) >= idle
    return idle if seconds_left >= (PARALLEL_SECONDS_WARM if warm else PARALLEL_SECONDS) else 0


# Workers of earlier replays, waiting for the next (oldest first), and when each was freed.
_waiting: list[tuple[subprocess.Popen[bytes], float]] = []
_waiting_lock = threading.Lock()
_idle_timer: threading.Timer | None = None


def _take_waiting(count: int) -> list[subprocess.Popen[bytes]]:
    """Up to `count` waiting workers that are still running, the most recently freed first."""
    taken: list[subprocess.Popen[bytes]] = []
    with _waiting_lock:
        while _waiting and len(taken) < count:
            worker, _ = _waiting.pop()
            if worker.poll() is None:
                taken.append(worker)
            else:
                _close(worker)
    return taken


def _wait_for_next(workers: Sequence[subprocess.Popen[bytes]]) -> None:
    """Keep workers that finished a replay for the next one, ending any waiting too long."""
    global _idle_timer
    now = time.monotonic()
    with _waiting_lock:
        _waiting.extend((worker, now) for worker in workers)
        if _idle_timer is None:
            _idle_timer = threading.Timer(IDLE_SECONDS, _end_stale)
            _idle_timer.daemon = True
            _idle_timer.start()


def _end_stale() -> None:
    """End the workers that have waited `IDLE_SECONDS`; look again when the next would have."""
    global _idle_timer
    now = time.monotonic()
    with _waiting_lock:
        stale = [worker for worker, freed in _waiting if now - freed >= IDLE_SECONDS]
        _waiting[:] = [(worker, freed) for worker, freed in _waiting if worker not in stale]
        _idle_timer = None
        if _waiting:
            _idle_timer = threading.Timer(IDLE_SECONDS - (now - _waiting[0][1]), _end_stale)
            _idle_timer.daemon = True
            _idle_timer.start()
    for worker in stale:
        _end_worker(worker)


def end_idle_workers() -> int:
    """End the workers that wait for the next replay now, rather than when their time is up;
    returns how many there were."""
    global _idle_timer
    with _waiting_lock:
        workers = [worker for worker, _ in _waiting]
        _waiting.clear()
        if _idle_timer is not None:
            _idle_timer.cancel()
            _idle_timer = None
    for worker in workers:
        _end_worker(worker)
    return len(workers)


def _end_worker(worker: subprocess.Popen[bytes], *, kill: bool = False) -> None:
    """Tell a worker there is no more (or kill it), and wait for it."""
    if kill:
        worker.kill()
    else:
        try:
            _send(worker, None)
        except OSError:
            worker.kill()
    _close(worker)


def _close(worker: subprocess.Popen[bytes]) -> None:
    for pipe in (worker.stdin, worker.stdout):
        if pipe is not None:
            with contextlib.suppress(OSError):  # a buffer left for a closed pipe
                pipe.close()
    try:
        worker.wait(timeout=5)
    except subprocess.TimeoutExpired:
        worker.kill()
        worker.wait()


def _forget_in_child() -> None:
    """In a child forked from this process: the waiting workers are the parent's. Close this
    process's ends of their pipes (nothing is buffered on them while they wait) so that they
    still see the parent go, and never send them anything."""
    global _idle_timer, _waiting_lock
    _waiting_lock = threading.Lock()  # (another thread may have held it at the fork)
    for worker, _ in _waiting:
        for pipe in (worker.stdin, worker.stdout):
            if pipe is not None:
                with contextlib.suppress(OSError, ValueError):
                    pipe.close()
        worker.returncode = 0  # not this process's child: never waited for here
    _waiting.clear()
    _idle_timer = None


atexit.register(end_idle_workers)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_in_child)


class ReplayPool:
    """Workers rendering for the pipelines given, by webhook id (`None` for requests no webhook
    captured); with `fixed`, the one pipeline keyed `None` renders every request, whatever
    captured it. Use it as a context manager: leaving it ends the workers, at once if it is
    left by an exception.

    Each worker is `python -m hooklab.history.parallel` on pipes: it compiles the templates,
    says it is ready, then renders the chunks it is sent, in turn, until the replay is done.
    Consecutive chunks go in groups of `MESSAGE_REQUESTS` requests or more, group `i` to worker
    `i % workers`, so their results are read back in order. A waiting
    worker that does not say it is ready within `READY_SECONDS` (stopped, or gone) is ended and
    another started in its place."""

    def __init__(
        self,
        webhooks: dict[str | None, Webhook],
        budgets: Budgets,
        workers: int,
        *,
        fixed: bool = False,
    ) -> None:
        self.webhooks = webhooks
        self.fixed = fixed
        self._finished = False  # every chunk's results read back: the workers may be kept
        self._workers: list[subprocess.Popen[bytes]] = _take_waiting(workers)
        job = (webhooks, budgets)
        try:
            reused = len(self._workers)
            while len(self._workers) < workers:
                self._workers.append(_start_worker())
            for number, worker in enumerate(self._workers):
                if number < reused:
                    if _ready(worker, job, READY_SECONDS):
                        continue
                    _end_worker(worker, kill=True)  # stopped, or gone since it was looked at
                    self._workers[number] = worker = _start_worker()
                if not _ready(worker, job, START_SECONDS):
                    raise RuntimeError(
                        f"a replay worker did not start within {START_SECONDS:g} s "
                        f"(exit status {worker.poll()})"
                    )
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
        workers, self._workers = self._workers, []
        if not kill and self._finished:
            try:
                for worker in workers:
                    _send(worker, _JOB_DONE)
            except OSError:
                pass
            else:
                _wait_for_next(workers)
                return
        for worker in workers:  # a replay stopped part way: its workers may still be busy
            _end_worker(worker, kill=True)

    def drafts(
        self,
        chunks: Sequence[Sequence[tuple[HookRequest, str | None]]],
        pipelines: dict[str | None, Pipeline],
    ) -> Iterator[list[Outcome | PlainEvent]]:
        """Each chunk's drafts (what `Pipeline.draft` gives), in order, as the workers finish
        them; `pipelines` are this process's, by the same keys as the workers'."""
        fixed = self.fixed
        count = len(self._workers)
        groups = _grouped(chunks, MESSAGE_REQUESTS)
        feeders = [
            threading.Thread(target=_feed, args=(worker, groups[number::count], fixed), daemon=True)
            for number, worker in enumerate(self._workers)
        ]
        for feeder in feeders:
            feeder.start()
        for number, group in enumerate(groups):
            found, start = _receive(self._workers[number % count]), 0
            for chunk in group:
                items: list[Outcome | PlainEvent] = []
                results, start = found[start : start + len(chunk)], start + len(chunk)
                for (request, webhook_id), result in zip(chunk, results, strict=True):
                    if isinstance(result, Outcome):
                        items.append(replace(result, request=request))
                    else:
                        pipeline = pipelines[None if fixed else webhook_id]
                        items.append(_new_plain(PlainEvent, (pipeline, request, *result)))
                yield items
        for feeder in feeders:
            feeder.join()
        self._finished = True


Chunk = Sequence[tuple[HookRequest, str | None]]


def _grouped(chunks: Sequence[Chunk], least: int) -> list[list[Chunk]]:
    """Consecutive chunks, grouped until each group holds `least` requests (but the last): a
    worker is sent a group at once, and a message costs about as much as a few renders."""
    groups: list[list[Chunk]] = []
    size = least
    for chunk in chunks:
        if size >= least:
            groups.append([])
            size = 0
        groups[-1].append(chunk)
        size += len(chunk)
    return groups


def _ready(worker: subprocess.Popen[bytes], job: Any, seconds: float) -> bool:
    """Send a worker a replay's webhooks and budgets; whether it says it is ready in time."""
    try:
        _send(worker, job)
        assert worker.stdout is not None
        if not select.select([worker.stdout], [], [], seconds)[0]:
            return False
        return bool(pickle.load(worker.stdout) == _READY)
    except (OSError, EOFError, pickle.UnpicklingError):  # it has gone
        return False


def _start_worker() -> subprocess.Popen[bytes]:
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parent.parent.parent)  # where hooklab is imported
    env["PYTHONPATH"] = os.pathsep.join([root, *filter(None, [env.get("PYTHONPATH")])])
    worker = subprocess.Popen(
        [sys.executable, "-m", "hooklab.history.parallel"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=env,
    )
    for pipe in (worker.stdin, worker.stdout):
        _widen(pipe)
    return worker


def _widen(pipe: IO[bytes] | None) -> None:
    """Let a pipe hold a few chunks: the results are read in order, so a worker a chunk ahead
    of the others would otherwise wait on a full pipe rather than render its next chunk."""
    size = getattr(fcntl, "F_SETPIPE_SZ", None) if fcntl is not None else None
    if pipe is None or size is None:
        return
    with contextlib.suppress(OSError):  # more than this system lets a pipe hold
        fcntl.fcntl(pipe.fileno(), size, PIPE_BYTES)


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


def _feed(worker: subprocess.Popen[bytes], groups: Sequence[list[Chunk]], fixed: bool) -> None:
    """Send a worker its groups of chunks, each request with the key of its pipeline; a worker
    that was ended (the replay stopped early) takes no more."""
    try:
        for group in groups:
            _send(
                worker,
                [
                    (*_fields(request), None if fixed else key)
                    for chunk in group
                    for request, key in chunk
                ],
            )
    except (OSError, ValueError):  # a closed pipe: the replay is over
        pass


_pipelines: dict[str | None, Pipeline] = {}


_JOB_DONE = "done"  # after a replay's last chunk: wait for the next replay's webhooks
_READY = "ready"  # a worker's answer to a replay's webhooks, once it has compiled them


def _work() -> None:
    """A worker's life: for each replay, compile each webhook's template once, then render the
    chunks it is sent until that replay is done; end when sent `None` or when its input closes.
    The interrupt key is the replaying process's, which ends the workers; what a template
    prints goes to stderr, not into the results."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    gc.disable()  # a replay makes only acyclic objects; what is left is collected after it
    tasks = os.fdopen(os.dup(0), "rb")
    results = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    try:
        while (job := pickle.load(tasks)) is not None:
            webhooks, budgets = job
            _pipelines.update({key: Pipeline(h, budgets=budgets) for key, h in webhooks.items()})
            _answer(results, _READY)
            while (chunk := pickle.load(tasks)) != _JOB_DONE:
                if chunk is None:
                    return
                _answer(results, _render(chunk))
            _pipelines.clear()
            gc.collect(0)  # what this replay made and left (the rest was there before it)
    except (EOFError, BrokenPipeError):  # the replaying process has gone
        return


def _answer(results: IO[bytes], message: Any) -> None:
    pickle.dump(message, results, protocol=pickle.HIGHEST_PROTOCOL)
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
