"""Forwarding into a real Prefect server with basic auth on: outages, restarts, automations."""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import pytest
from cli_support import base_env, run_cli, served_url
from pg_support import PostgresCluster
from prefect_support import AUTH, PrefectServer, free_port

from hooklab.core.request import HookRequest
from hooklab.prefect import Credentials, Forwarding, forward_history
from hooklab.prefect.client import PrefectError
from hooklab.prefect.process import ForwardingProcess
from hooklab.workspace import Workspace

TEMPLATE = (
    '{"event": "{{ body.kind }}", "resource": {"prefect.resource.id": "item.{{ body.n }}"}, '
    '"payload": {"n": {{ body.n }}}}'
)


def store_events(ws: Workspace, slug: str, kind: str, numbers: range) -> None:
    for n in numbers:
        ws.receive(slug, HookRequest.fake(method="POST", json={"kind": kind, "n": n}))


def forwarding(ws: Workspace, url: str, **options: object) -> Forwarding:
    creds = {url: Credentials(auth_string=AUTH)}
    return Forwarding(ws, credentials=creds, backoff_cap=1.0, **options).start()  # type: ignore[arg-type]


@contextmanager
def hooklab_serve(
    home: Path, *options: str, credentials: bool = True
) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """`hooklab serve` on `home` with Prefect's credentials in its environment (unless
    `credentials` is False), as a team would run it: the process (stdout and stderr piped) and
    its base URL; always stopped after."""
    env = {**os.environ, "PREFECT_API_AUTH_STRING": AUTH, "HOOKLAB_ADMIN_KEY": "k"}
    if not credentials:
        env = {
            k: v for k, v in env.items() if k not in ("PREFECT_API_AUTH_STRING", "PREFECT_API_KEY")
        }
    command = [sys.executable, "-m", "hooklab.server", "--home", str(home), "--port", "0", *options]
    serve = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert serve.stdout is not None
        base = served_url(serve.stdout.readline())
        assert base.startswith("http://127.0.0.1:")
        yield serve, base
    finally:
        if serve.poll() is None:
            serve.terminate()
            serve.wait(timeout=20)
        for stream in (serve.stdout, serve.stderr):
            if stream is not None:
                stream.close()


def test_a_prefect_outage_loses_nothing_and_duplicates_nothing(
    prefect_server: PrefectServer, tmp_path: Path
) -> None:
    ws = Workspace(tmp_path / "hooklab.db")
    hook = ws.create_webhook("outage", TEMPLATE)
    ws.forward_to(prefect_server.url)
    errors: list[str] = []
    resumed: list[str] = []
    sender = forwarding(
        ws,
        prefect_server.url,
        on_error=lambda _url, line: errors.append(line),
        on_resumed=lambda _url, line: resumed.append(line),
    )
    try:
        store_events(ws, hook.slug, "outage.before", range(40))
        broken = HookRequest.fake(method="POST", json={"kind": "outage.x", "n": "oops"})
        assert ws.receive(hook.slug, broken).status == 400  # a failure goes too
        assert sender.wait_until_delivered(60)
        prefect_server.stop()  # Prefect goes away in the middle of the traffic
        store_events(ws, hook.slug, "outage.during", range(40, 100))
        deadline = time.monotonic() + 30
        while not errors and time.monotonic() < deadline:
            time.sleep(0.1)
        [state] = ws.outbox().destinations()
        assert state.pending == 60 and state.last_error is not None
        assert (
            "cannot reach Prefect" in state.last_error or "lost the connection" in state.last_error
        )
        prefect_server.start()  # the same database
        assert sender.wait_until_delivered(90)
    finally:
        sender.close()
    ids = prefect_server.wait_for_events("outage.", 100)
    stored = ws.events()
    assert Counter(ids) == Counter(stored[stored["event"].str.startswith("outage.")]["id"])
    failed = prefect_server.wait_for_events("prefect-cloud.webhook.failed", 1)
    assert len(failed) == 1 and failed == list(stored[stored["failed"]]["id"])
    [state] = ws.outbox().destinations()
    assert (state.pending, state.delivered) == (0, 101)
    assert state.last_delivered is not None and state.last_error_at is not None
    assert not state.failing and state.last_delivered > state.last_error_at
    # Delivery said once that it works again, and the status shows the old error as past.
    assert resumed == [f"Prefect takes events again, after {len(errors)} failed attempts"]
    shown = run_cli(base_env(HOOKLAB_HOME=str(tmp_path)), "forward", "status")
    [row] = [line for line in shown.stdout.splitlines() if line.startswith(prefect_server.url)]
    assert "(resolved) " in row and state.last_delivered.strftime("%Y-%m-%d %H:%M:%S") in row
    ws.close()


def test_a_hooklab_restart_with_events_pending_loses_none(
    prefect_server: PrefectServer, tmp_path: Path
) -> None:
    ws = Workspace(tmp_path / "hooklab.db")
    hook = ws.create_webhook("restart", TEMPLATE)
    ws.forward_to(prefect_server.url)
    store_events(ws, hook.slug, "restart.pending", range(25))  # stored, nobody delivering
    ws.close()
    with hooklab_serve(tmp_path) as (serve, base):
        assert serve.stdout is not None
        said = "".join(serve.stdout.readline() for _ in range(3))  # API, webhook, forwarding
        assert f"forwarding events to {prefect_server.url}\n" in said
        # And what arrives over HTTP while it serves goes the same way.
        assert post(f"{base}/hooks/{hook.slug}", b'{"kind": "restart.served", "n": 99}') == 204
        assert len(prefect_server.wait_for_events("restart.", 26)) == 26
    check = Workspace(tmp_path / "hooklab.db")
    [state] = check.outbox().destinations()
    assert (state.pending, state.delivered) == (0, 26)
    check.close()


def test_an_automation_fires_on_a_forwarded_event(
    prefect_server: PrefectServer, tmp_path: Path
) -> None:
    automation = prefect_server.call(
        "POST",
        "/automations/",
        {
            "name": "on-hooklab-deploy",
            "trigger": {
                "type": "event",
                "expect": ["hooklab.deploy"],
                "posture": "Reactive",
                "threshold": 1,
                "within": 0,
            },
            "actions": [{"type": "do-nothing"}],
        },
    )
    ws = Workspace(tmp_path / "hooklab.db")
    hook = ws.create_webhook("deploys", TEMPLATE)
    ws.forward_to(prefect_server.url)
    sender = forwarding(ws, prefect_server.url)
    try:
        # A new automation takes a few seconds to listen: send until it has fired.
        deadline = time.monotonic() + 60
        fired: list[str] = []
        n = 0
        while not fired and time.monotonic() < deadline:
            store_events(ws, hook.slug, "hooklab.deploy", range(n, n + 1))
            n += 1
            time.sleep(1)
            fired = [
                e
                for e in prefect_server.event_ids("prefect.automation.triggered")
                if e  # ids only; the resource below says which automation
            ]
    finally:
        sender.close()
    body = {
        "filter": {
            "occurred": {"since": "2000-01-01T00:00:00Z", "until": "2100-01-01T00:00:00Z"},
            "event": {"name": ["prefect.automation.triggered"]},
            "resource": {"id": [f"prefect.automation.{automation['id']}"]},
        },
        "limit": 50,
    }
    assert prefect_server.call("POST", "/events/filter", body)["events"]
    ws.close()


def test_a_wrong_key_is_reported_and_retried_never_a_crash(
    prefect_server: PrefectServer, tmp_path: Path
) -> None:
    ws = Workspace(tmp_path / "hooklab.db")
    hook = ws.create_webhook("badkey", TEMPLATE)
    ws.forward_to(prefect_server.url)
    store_events(ws, hook.slug, "badkey.one", range(3))
    errors: list[str] = []
    creds = {prefect_server.url: Credentials(auth_string="user:wrong")}
    sender = Forwarding(
        ws,
        credentials=creds,
        backoff_cap=0.5,
        on_error=lambda _url, line: errors.append(line),
    ).start()
    try:
        deadline = time.monotonic() + 30
        while len(errors) < 3 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert sender.running  # still trying, with backoff
    finally:
        sender.close()
    assert len(errors) >= 3
    assert "refused the credentials" in errors[0] and "\n" not in errors[0]
    assert "wrong" not in errors[0]  # the credentials are never shown
    [state] = ws.outbox().destinations()
    assert state.pending == 3 and state.last_error == errors[-1]
    ws.close()


def test_backfill_to_an_unreachable_url_or_not_prefect_says_so_in_one_line(
    tmp_path: Path,
) -> None:
    ws = Workspace(tmp_path / "hooklab.db")
    hook = ws.create_webhook("nowhere", TEMPLATE)
    store_events(ws, hook.slug, "nowhere.one", range(2))
    with pytest.raises(
        PrefectError, match=r"cannot reach Prefect at http://127\.0\.0\.1:"
    ) as unreachable:
        forward_history(ws, f"http://127.0.0.1:{free_port()}/api")
    assert "\n" not in str(unreachable.value)
    with pytest.raises(ValueError, match="not a Prefect API URL"):
        ws.forward_to("ftp://example")
    ws.close()


def test_backfill_to_a_server_that_is_not_prefect(tmp_path: Path) -> None:
    """A hooklab server stands in for any web server that is not a Prefect API."""
    ws = Workspace(tmp_path / "other" / "hooklab.db")
    hook = ws.create_webhook("other", TEMPLATE)
    store_events(ws, hook.slug, "other.one", range(2))
    ws.close()
    command = [sys.executable, "-m", "hooklab.server", "--home", str(tmp_path / "s"), "--port", "0"]
    serve = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        assert serve.stdout is not None
        base = served_url(serve.stdout.readline())
        ws = Workspace(tmp_path / "other" / "hooklab.db")
        with pytest.raises(PrefectError, match="does not look like a Prefect API"):
            forward_history(ws, f"{base}/not-an-api")
        ws.close()
    finally:
        serve.terminate()
        serve.wait(timeout=20)
        if serve.stdout:
            serve.stdout.close()


def test_a_replay_forwards_as_new_events_and_twice_as_the_same_ones(
    prefect_server: PrefectServer, tmp_path: Path
) -> None:
    import hooklab
    from hooklab.prefect import forward_replay

    ws = Workspace(tmp_path / "hooklab.db")
    hook = ws.create_webhook("replayed", TEMPLATE)
    store_events(ws, hook.slug, "replay.original", range(5))
    ws.receive(hook.slug, HookRequest.fake(method="POST", json={"kind": "replay.x", "n": "no"}))
    assert forward_history(ws, prefect_server.url, credentials=Credentials(None, AUTH)) == 6
    originals = set(prefect_server.wait_for_events("replay.original", 5))

    result = hooklab.replay(ws.requests(webhook="replayed"), hook.template, workspace=ws)
    assert forward_replay(result, prefect_server.url, auth_string=AUTH) == 6  # failures too
    replayed = [str(e.id) for outcome in result.outcomes for e in outcome.events]
    ids = set(prefect_server.wait_for_events("replay.original", 10))
    assert len(ids) == 10 and originals < ids  # new ids: the same events again, as others
    failed = set(prefect_server.wait_for_events("prefect-cloud.webhook.failed", 1))
    assert set(replayed) <= ids | failed

    forward_replay(result, prefect_server.url, auth_string=AUTH)  # the same result: same ids
    # A later event, sent on after it, marks when Prefect has handled the second send.
    store_events(ws, hook.slug, "replay.marker", range(1))
    forward_history(ws, prefect_server.url, credentials=Credentials(None, AUTH))
    prefect_server.wait_for_events("replay.marker", 1)
    assert Counter(prefect_server.event_ids("replay.original")) == Counter(ids)


def children(pid: int) -> list[int]:
    return [
        int(child)
        for task in Path(f"/proc/{pid}/task").glob("*")
        for child in (task / "children").read_text().split()
    ]


def line_within(stream: IO[str], seconds: float) -> str:
    """The next line of a child's pipe, or "" if none comes in time (never a hung test)."""
    ready, _, _ = select.select([stream], [], [], seconds)
    return stream.readline() if ready else ""


def post(url: str, body: bytes) -> int:
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as answer:
        return int(answer.status)


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="reads children from /proc")
def test_serve_forwards_from_a_child_it_restarts_and_that_dies_with_it(
    prefect_server: PrefectServer, tmp_path: Path
) -> None:
    ws = Workspace(tmp_path / "hooklab.db")
    hook = ws.create_webhook("child", TEMPLATE)
    ws.forward_to(prefect_server.url)
    ws.close()
    with hooklab_serve(tmp_path) as (serve, base):
        assert serve.stderr is not None
        hook_url = f"{base}/hooks/{hook.slug}"
        [child] = children(serve.pid)
        assert post(hook_url, b'{"kind": "child.first", "n": 1}') == 204
        assert len(prefect_server.wait_for_events("child.", 1)) == 1
        os.kill(child, 9)  # the forwarder dies: serve answers on, and starts another
        assert post(hook_url, b'{"kind": "child.second", "n": 2}') == 204
        said = line_within(serve.stderr, 30)
        assert "the forwarding process ended (status -9); starting it again" in said
        assert len(prefect_server.wait_for_events("child.", 2)) == 2
        [second] = children(serve.pid)
        assert second != child
        serve.kill()  # and a forwarder whose server dies stops by itself
        serve.wait(timeout=20)
        deadline = time.monotonic() + 10
        while Path(f"/proc/{second}").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert (
            not Path(f"/proc/{second}").exists()
            or "Z" in Path(f"/proc/{second}/stat").read_text().rsplit(")", 1)[1].split()[0]
        )


class SteadySender(threading.Thread):
    """Posts one event to a hook every `every` seconds until stopped, over one keep-alive
    connection (a new one after a failure); counts the 204s."""

    def __init__(self, url: str, kind: str, every: float = 0.02) -> None:
        super().__init__(name="steady-sender", daemon=True)
        self.url, self.kind, self.every = url, kind, every
        self.acknowledged = 0
        self.halt = threading.Event()

    def run(self) -> None:
        n = 0
        while not self.halt.wait(self.every):
            body = json.dumps({"kind": self.kind, "n": n}).encode()
            n += 1
            try:
                if post(self.url, body) == 204:
                    self.acknowledged += 1
            except OSError:
                pass

    def stop(self) -> int:
        self.halt.set()
        self.join(10)
        return self.acknowledged


def delivered(home: Path) -> int:
    check = Workspace(home / "hooklab.db")
    try:
        return sum(d.delivered for d in check.forwarding())
    finally:
        check.close()


def test_a_prefect_killed_mid_stream_keeps_every_event_hooklab_counted_delivered(
    prefect_server: PrefectServer, tmp_path: Path
) -> None:
    """Prefect answers on its socket before it writes: `kill -9` right after hooklab counted
    a batch delivered must not lose that batch. Counted by id, once Prefect is back."""
    ws = Workspace(tmp_path / "hooklab.db")
    hook = ws.create_webhook("killed", TEMPLATE)
    ws.forward_to(prefect_server.url)
    ws.close()
    with hooklab_serve(tmp_path) as (_serve, base):
        sender = SteadySender(f"{base}/hooks/{hook.slug}", "killed.steady")
        sender.start()
        try:
            deadline = time.monotonic() + 60
            while delivered(tmp_path) < 20 and time.monotonic() < deadline:
                time.sleep(0.01)
            before = delivered(tmp_path)
            while delivered(tmp_path) == before and time.monotonic() < deadline:
                time.sleep(0.005)
            prefect_server.kill()  # right after hooklab counted a batch delivered
            time.sleep(1)
            prefect_server.start()  # the same database
            time.sleep(1)
        finally:
            acknowledged = sender.stop()
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            check = Workspace(tmp_path / "hooklab.db")
            [state] = check.forwarding()
            check.close()
            if state.pending == 0:
                break
            time.sleep(0.2)
        assert state.pending == 0
    check = Workspace(tmp_path / "hooklab.db")
    stored = set(check.events()["id"])
    check.close()
    assert len(stored) == acknowledged > 20
    found = set(prefect_server.wait_for_events("killed.", len(stored), timeout=20))
    assert stored - found == set()


def test_a_password_in_forward_to_is_used_and_never_stored_or_shown(
    prefect_server: PrefectServer, tmp_path: Path
) -> None:
    ws = Workspace(tmp_path / "hooklab.db")
    hook = ws.create_webhook("secret", TEMPLATE)
    ws.close()
    user, password = AUTH.split(":")
    wrong = "Wr0ngPassw0rd"
    where = prefect_server.url.split("://", 1)[1]
    seen: list[str] = []
    for attempt, secret in enumerate([wrong, password]):
        url = f"http://{user}:{secret}@{where}"
        with hooklab_serve(tmp_path, "--forward-to", url, credentials=False) as (serve, base):
            assert serve.stdout is not None and serve.stderr is not None
            seen += [serve.stdout.readline() for _ in range(3)]  # API, webhook, forwarding
            assert f"forwarding events to {prefect_server.url}\n" in "".join(seen[-3:])
            body = json.dumps({"kind": "secret.sent", "n": attempt}).encode()
            assert post(f"{base}/hooks/{hook.slug}", body) == 204
            [child] = children(serve.pid)
            seen.append(Path(f"/proc/{child}/cmdline").read_text())
            if secret == wrong:  # refused, in lines that do not show it
                said = line_within(serve.stderr, 30)
                assert "refused the credentials" in said
                seen.append(said)
            else:  # taken from the URL: both events arrive (the first was kept pending)
                assert len(prefect_server.wait_for_events("secret.", 2)) == 2
            status = run_cli(base_env(HOOKLAB_HOME=str(tmp_path)), "forward", "status")
            seen.append(status.stdout + status.stderr)
        seen += serve.communicate(timeout=30)
    for text in seen:
        assert wrong not in text and f":{password}@" not in text, text
    for stored in tmp_path.glob("hooklab.db*"):
        data = stored.read_bytes()
        assert wrong.encode() not in data and f":{password}@".encode() not in data


def test_a_store_that_stops_answering_is_told_under_the_destination_it_holds_back(
    postgres_cluster: PostgresCluster, postgres_url: str
) -> None:
    # `hooklab serve` prints these as "forwarding to <url> ...": the url must be where events
    # go, not the store (which read "forwarding to postgresql://... failed").
    ws = Workspace(postgres_url)
    destination = ws.forward_to(f"http://127.0.0.1:{free_port()}/api").url  # no Prefect there
    told: list[tuple[str, str]] = []
    hear = lambda url, line: told.append((url, line))  # noqa: E731
    sender = Forwarding(ws, backoff_cap=0.5, timeout=1.0, on_error=hear, on_resumed=hear).start()

    def wait_for(text: str) -> None:
        deadline = time.monotonic() + 30
        while not any(text in line for _url, line in told) and time.monotonic() < deadline:
            time.sleep(0.05)

    try:
        wait_for("")  # a first round: the destination is known
        postgres_cluster.stop()
        wait_for("the store does not answer")
        postgres_cluster.start()
        wait_for("the store answers again")
    finally:
        sender.close()
        ws.close()
    about_the_store = [(url, line) for url, line in told if "the store" in line]
    assert [line.split(":")[0] for _url, line in about_the_store] == [
        "the store does not answer",
        "the store answers again",
    ]
    assert {url for url, _line in about_the_store} == {destination}


def test_the_store_back_while_prefect_still_fails_is_news_of_the_store_not_of_prefect(
    postgres_cluster: PostgresCluster, postgres_url: str
) -> None:
    # The forwarding process of `hooklab serve`, its lines as the server's log hears them.
    ws = Workspace(postgres_url)
    url = ws.forward_to(f"http://127.0.0.1:{free_port()}/api").url  # no Prefect there
    store_events(ws, ws.create_webhook("held", TEMPLATE).slug, "held.", range(3))
    warned: list[str] = []
    told: list[str] = []
    child = ForwardingProcess(ws, say=warned.append, inform=told.append).start()

    def wait_for(text: str, lines: list[str]) -> None:
        deadline = time.monotonic() + 60
        while not any(text in line for line in lines) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert any(text in line for line in lines), (warned, told)

    try:
        wait_for("failed, will retry", warned)
        postgres_cluster.stop()
        wait_for("waits for the store", warned)
        postgres_cluster.start()
        wait_for("the store answers again", told)
        time.sleep(2)  # Prefect fails again meanwhile: no new line (the episode goes on)
    finally:
        child.close()
        ws.close()
    assert told == [
        f"forwarding to {url}: the store answers again; Prefect is still failing, as said above"
    ]
    assert not any("resumed" in line or "answers again" in line for line in warned)
    assert len([line for line in warned if "failed, will retry" in line]) == 1
