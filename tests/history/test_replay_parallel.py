"""A replay on every core gives the single process's result: the same frame in the same order,
the same failures and outcomes, the same progress; an interrupted one leaves no worker behind."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from corpus_support import github_deliveries

import hooklab
from hooklab.core.request import HookRequest
from hooklab.history import cores, parallel
from hooklab.history import replay as replay_module
from hooklab.history.replay import ReplayResult, replay
from hooklab.store.contract import StoredRequest

# Deliveries with an action take the plain lane; pushes give their own time (another lane);
# the rest make no JSON (failures).
TEMPLATE = """{% if body.action %}{
  "event": "github.{{ headers['X-GitHub-Event'] }}.{{ body.action }}",
  "resource": {"prefect.resource.id": "github.repo.{{ body.repository.full_name }}",
               "title": {{ (body.pull_request.title or body.issue.title or "")|truncate(30)|tojson }}},
  "payload": {"sender": {{ body.sender.login|tojson }}}
}{% elif body.ref %}{
  "event": "github.push", "resource": {"prefect.resource.id": "push"},
  "occurred": "{{ body.repository.pushed_at }}", "payload": {"ref": {{ body.ref|tojson }}}
}{% else %}no event here{% endif %}"""  # noqa: E501
FRESH = ["id", "occurred"]  # made anew by every replay


def deliveries(times: int = 3) -> list[HookRequest]:
    found = []
    for path in github_deliveries() * times:
        headers = {"Content-Type": "application/json", "X-GitHub-Event": path.parent.name}
        found.append(HookRequest.fake(method="POST", headers=headers, body=path.read_bytes()))
    return found


def same_result(one: ReplayResult, many: ReplayResult) -> None:
    pd.testing.assert_frame_equal(one.frame.drop(columns=FRESH), many.frame.drop(columns=FRESH))
    assert many.frame["id"].is_unique
    assert one.summary() == many.summary()
    assert [o.status for o in one.outcomes] == [o.status for o in many.outcomes]
    assert [o.error for o in one.outcomes] == [o.error for o in many.outcomes]
    assert [o.rendered for o in one.outcomes] == [o.rendered for o in many.outcomes]


def test_workers_give_the_frame_failures_and_outcomes_of_one_process() -> None:
    requests = deliveries()
    one = replay(requests, TEMPLATE, processes=1)
    many = replay(requests, TEMPLATE, processes=2)
    assert 0 < one.failed_count < len(one)
    assert (one.events["event"] == "github.push").any()
    same_result(one, many)
    assert [o.request for o in many.outcomes] == requests
    assert many.outcomes[0].request is requests[0]
    pd.testing.assert_frame_equal(
        one.failures.drop(columns=FRESH), many.failures.drop(columns=FRESH)
    )


def test_workers_replay_each_request_through_its_own_webhook(tmp_path: Path) -> None:
    ws = hooklab.Workspace(tmp_path / "hooklab.db")
    hooks = [ws.create_webhook(name, TEMPLATE) for name in ("github", "mirror")]
    for number, request in enumerate(deliveries(1)):
        ws.receive(hooks[number % 2].slug, request)
    captured = ws.captured()
    one = replay(captured, TEMPLATE.replace("github.", "gh."), workspace=ws, processes=1)
    many = replay(captured, TEMPLATE.replace("github.", "gh."), workspace=ws, processes=2)
    same_result(one, many)
    assert set(many.events["webhook_name"]) == {"github", "mirror"}
    ws.close()


def test_progress_is_told_as_often_and_as_far_either_way() -> None:
    requests = deliveries()
    told: dict[int, list[tuple[int, int]]] = {1: [], 2: []}
    for processes, calls in told.items():
        replay(requests, TEMPLATE, processes=processes, progress=lambda *a, c=calls: c.append(a))
    assert told[1] == told[2]
    assert told[2][-1] == (len(requests), len(requests))


def children() -> set[int]:
    """This process's child processes that are still running."""
    found = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            fields = stat.rsplit(")", 1)[1].split()
            if int(fields[1]) == os.getpid() and fields[0] != "Z":
                found.add(int(entry))
    return found


@pytest.fixture(autouse=True)
def no_waiting_workers() -> Iterator[None]:
    """Each test starts and ends without workers left waiting by an earlier replay."""
    parallel.end_idle_workers()
    yield
    parallel.end_idle_workers()


def test_the_next_replay_takes_the_workers_the_last_one_left_waiting() -> None:
    before = children()
    requests = deliveries(1)
    first = replay(requests, TEMPLATE, processes=2)
    waiting = children() - before
    assert len(waiting) == 2  # kept for the next replay
    seen: list[set[int]] = []
    second = replay(
        requests,
        TEMPLATE.replace("github.", "gh."),  # another template: compiled by the same workers
        processes=2,
        progress=lambda *_: seen.append(children() - before),
    )
    assert seen[0] == waiting  # no worker started
    same_result(replay(requests, TEMPLATE.replace("github.", "gh."), processes=1), second)
    same_result(replay(requests, TEMPLATE, processes=1), first)
    assert parallel.end_idle_workers() == 2
    assert children() - before == set()


def test_a_waiting_worker_that_has_gone_is_replaced() -> None:
    before = children()
    requests = deliveries(1)
    replay(requests, TEMPLATE, processes=2)
    gone = min(children() - before)
    os.kill(gone, signal.SIGKILL)  # (maybe not yet reaped, nor even ended, when looked at)
    again = replay(requests, TEMPLATE, processes=2)
    same_result(replay(requests, TEMPLATE, processes=1), again)
    running = children() - before
    assert len(running) == 2 and gone not in running


def test_waiting_workers_end_when_their_time_is_up(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(parallel, "IDLE_SECONDS", 0.2)
    before = children()
    replay(deliveries(1), TEMPLATE, processes=2)
    assert len(children() - before) == 2
    deadline = time.monotonic() + 10
    while children() - before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert children() - before == set()


def test_waiting_workers_end_with_the_process_that_started_them(tmp_path: Path) -> None:
    script = tmp_path / "replays.py"
    script.write_text(
        "import sys\n"
        "from hooklab.core.request import HookRequest\n"
        "from hooklab.history import parallel\n"
        "from hooklab.history.replay import replay\n"
        "requests = [HookRequest.fake(method='POST', form={'model': str(n)}) for n in range(50)]\n"
        'replay(requests, \'{"event": "{{ body.model }}", '
        '"resource": {"prefect.resource.id": "r"}}\', processes=2)\n'
        "print(' '.join(str(worker.pid) for worker, _ in parallel._waiting))\n"
    )
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, check=True, timeout=60
    )
    pids = [int(pid) for pid in done.stdout.split()]
    assert len(pids) == 2
    for pid in pids:  # ended before the exit, and reaped: no such process any more
        assert not Path(f"/proc/{pid}").exists()


def test_an_interrupted_replay_leaves_no_worker_running() -> None:
    before = children()
    seen: list[set[int]] = []

    def interrupt(done: int, total: int) -> None:
        seen.append(children() - before)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        replay(deliveries(), TEMPLATE, processes=2, progress=interrupt)
    assert len(seen[0]) == 2  # the workers ran
    assert children() - before == set()


def test_a_deterministic_workspace_replays_in_one_process_with_its_ids(
    ws: hooklab.Workspace,
) -> None:
    """Ids and times drawn in order from the workspace's sources stay so: such a replay is
    never spread over workers, however large, and asking for workers is refused."""
    requests = [HookRequest.fake(method="POST", form={"model": str(n)}) for n in range(12_000)]
    template = '{"event": "e", "resource": {"prefect.resource.id": "r"}}'
    result = replay(requests, template, workspace=ws)
    first = int(result.frame["id"].iloc[0].replace("-", ""), 16)
    assert [int(i.replace("-", ""), 16) for i in result.frame["id"]] == list(
        range(first, first + len(requests))
    )
    with pytest.raises(ValueError, match="default clock"):
        replay(requests[:10], '{"event": "e"}', workspace=ws, processes=2)


def test_a_quick_replay_of_many_requests_stays_in_this_process(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    started: list[int] = []
    real = parallel.ReplayPool.__init__

    def counted(self: parallel.ReplayPool, *args: object, **kwargs: object) -> None:
        started.append(1)
        real(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(parallel.ReplayPool, "__init__", counted)
    monkeypatch.setattr(parallel, "idle_cores", lambda since=None: 2)  # however busy it is
    form = HookRequest.fake(method="POST", form={"model": "m", "friendly_name": "M"})
    forms = [form] * 5_000
    template = '{"event": "{{ body.model }}", "resource": {"prefect.resource.id": "r"}}'
    quick = replay(forms, template)
    assert len(quick.events) == 5_000 and not started  # its workers would have cost more
    # However long it would take: each request renders quicker than it is handed over.
    monkeypatch.setattr(parallel, "PARALLEL_SECONDS", 0.0)
    monkeypatch.setattr(parallel, "PARALLEL_SECONDS_WARM", 0.0)
    monkeypatch.setattr(parallel, "PARALLEL_FROM", 100)
    assert len(replay(forms, template).events) == 5_000 and not started
    # A replay whose rest would take long enough goes on in workers, in order.
    monkeypatch.setattr(parallel, "PARALLEL_PER_REQUEST", 0.0)
    monkeypatch.setattr(replay_module, "PARALLEL_SAMPLE_SECONDS", 0.0)  # one chunk here
    requests = deliveries()
    one = replay(requests, TEMPLATE, processes=1)
    handed_over = replay(requests, TEMPLATE)
    assert started
    same_result(one, handed_over)
    assert [o.request for o in handed_over.outcomes] == requests


def test_idle_cores_are_those_idle_while_this_process_rendered(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Measured over the replay's first requests, not by the load of the last minute, which a
    replay just before (or its workers) would still raise."""
    monkeypatch.setattr(cores, "cores", lambda: 4)
    for idle_seconds, expected in ((0.0, 1), (0.75, 2), (2.0, 3), (3.0, 4)):
        monkeypatch.setattr(cores, "cpu_mark", lambda s=idle_seconds: (100.0 + s, 51.0))
        assert cores.idle_cores((100.0, 50.0)) == expected


def test_a_core_kept_busy_by_another_process_is_not_idle() -> None:
    hogs = [
        subprocess.Popen([sys.executable, "-c", "while True: pass"])
        for _ in range(cores.cores() - 1)
    ]
    try:
        time.sleep(0.3)
        mark = cores.cpu_mark()
        started = time.perf_counter()
        while time.perf_counter() - started < 0.3:  # this process busy too, as when it renders
            pass
        assert cores.idle_cores(mark) == 1
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()


def test_a_stopped_waiting_worker_is_replaced_not_waited_for(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(parallel, "READY_SECONDS", 0.5)
    before = children()
    requests = deliveries(1)
    replay(requests, TEMPLATE, processes=2)
    stopped = min(children() - before)
    os.kill(stopped, signal.SIGSTOP)
    try:
        again = replay(requests, TEMPLATE, processes=2)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(stopped, signal.SIGCONT)
    same_result(replay(requests, TEMPLATE, processes=1), again)
    assert stopped not in children() - before  # ended, and another took its place


def test_requests_of_a_webhook_and_of_none_keep_their_own_in_workers() -> None:
    """Requests no webhook captured replay through the template alone; the others keep their
    webhook's id, name and related resource, in workers as in one process."""
    owner = "11111111-1111-1111-1111-111111111111"
    mixed = [
        StoredRequest(request, None if number % 2 else owner, 204, None, None)
        for number, request in enumerate(deliveries(1))
    ]
    one = replay(mixed, TEMPLATE, processes=1)
    many = replay(mixed, TEMPLATE, processes=2)
    assert owner in set(one.events["webhook_id"])
    same_result(one, many)


def test_a_forked_child_leaves_the_waiting_workers_to_its_parent() -> None:
    requests = deliveries(1)
    replay(requests, TEMPLATE, processes=2)
    waiting = {worker.pid for worker, _ in parallel._waiting}
    for _ in range(5):
        child = os.fork()
        if child == 0:  # ends as a script would: hooklab's exit handler, then the exit
            try:
                parallel.end_idle_workers()
            finally:
                os._exit(0)
        again = replay(requests, TEMPLATE, processes=2)
        os.waitpid(child, 0)
        assert len(again) == len(requests)
    assert {worker.pid for worker, _ in parallel._waiting} == waiting  # the same, all along
