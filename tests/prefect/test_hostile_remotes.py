"""Remotes that are not what they claim, over real loopback sockets: a Prefect API (or a webhook
API) that redirects elsewhere, cuts its answer short, answers in the wrong shape or without
end, hangs, or is no Prefect at all. Each is one line, and a key never leaves for another
host."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import IO

import pytest
from cli_support import base_env, run_cli, served_url
from replica_support import post, replicas, seconds_until

from hooklab.core.request import HookRequest
from hooklab.prefect import Forwarding
from hooklab.prefect.client import PrefectApi, PrefectError
from hooklab.workspace import Workspace

KEY = "pnu_secret-key-of-the-test"
TEMPLATE = '{"event": "hostile.{{ body.n }}", "resource": {"prefect.resource.id": "x"}}'
Answer = Callable[[BaseHTTPRequestHandler], None]


class Remote:
    """An HTTP server on a loopback address that answers every request with `answer`, and
    keeps each request's method, path and headers."""

    def __init__(self, answer: Answer, host: str = "127.0.0.1") -> None:
        remote = self
        self.answer = answer
        self.seen: list[tuple[str, str, dict[str, str]]] = []

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def handle_one_request(self) -> None:
                try:
                    super().handle_one_request()
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True

            def serve(self) -> None:
                remote.seen.append((self.command, self.path, dict(self.headers.items())))
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                remote.answer(self)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = serve

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer((host, 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://{host}:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def remotes() -> Iterator[Callable[..., Remote]]:
    made: list[Remote] = []

    def make(answer: Answer, host: str = "127.0.0.1") -> Remote:
        made.append(Remote(answer, host))
        return made[-1]

    yield make
    for remote in made:
        remote.close()


def reply(status: int, body: bytes, headers: dict[str, str] | None = None) -> Answer:
    def answer(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(status)
        for name, value in {"Content-Length": str(len(body)), **(headers or {})}.items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(body)

    return answer


def redirect_to(target: Remote) -> Answer:
    def answer(handler: BaseHTTPRequestHandler) -> None:
        reply(302, b"", {"Location": target.url + handler.path})(handler)

    return answer


def cut_short(handler: BaseHTTPRequestHandler) -> None:
    """Promises 1,000 bytes of JSON, sends 10, and closes."""
    handler.send_response(200)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", "1000")
    handler.end_headers()
    handler.wfile.write(b'{"events":')
    handler.close_connection = True


def declares_two_gigabytes(handler: BaseHTTPRequestHandler) -> None:
    handler.send_response(200)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(2 * 10**9))
    handler.end_headers()
    handler.wfile.write(b"[" * 1000)
    handler.close_connection = True


def endless(handler: BaseHTTPRequestHandler) -> None:
    """An answer with no length that goes on (600 MB) until the reader gives up."""
    handler.send_response(200)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Connection", "close")
    handler.end_headers()
    chunk = b" " * (1 << 20)
    for _ in range(600):
        handler.wfile.write(chunk)
    handler.close_connection = True


def home_with_a_webhook(tmp_path: Path) -> dict[str, str]:
    ws = Workspace(tmp_path / "hooklab.db")
    hook = ws.create_webhook("models", TEMPLATE)
    ws.receive(hook.slug, HookRequest.fake(method="POST", json={"n": 1}))
    ws.close()
    return base_env(HOOKLAB_HOME=str(tmp_path), PREFECT_API_KEY=KEY)


# The three readers of a remote API, as a person runs them.
COMMANDS: dict[str, Callable[[str], list[str]]] = {
    "prefect events": lambda url: ["prefect", "events", f"{url}/api", "--since", "1h"],
    "webhook push": lambda url: ["webhook", "push", "models", "--to", f"{url}/api"],
    "webhook pull": lambda url: ["webhook", "pull", "--from", f"{url}/api"],
}


def one_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr and KEY not in result.stderr + result.stdout
    [line] = result.stderr.splitlines()
    return line


@pytest.mark.parametrize("command", COMMANDS)
def test_a_key_never_follows_a_redirect_to_another_host(
    command: str, remotes: Callable[..., Remote], tmp_path: Path
) -> None:
    elsewhere = remotes(reply(200, b"[]"), host="127.0.0.2")
    first = remotes(redirect_to(elsewhere))
    env = home_with_a_webhook(tmp_path)
    line = one_line(run_cli(env, *COMMANDS[command](first.url)))
    assert f"redirected (302) to another host, {elsewhere.url}: not followed" in line
    assert first.seen and first.seen[0][2]["Authorization"] == f"Bearer {KEY}"
    assert not any("Authorization" in headers for _, _, headers in elsewhere.seen)


def test_a_redirect_within_the_same_host_keeps_working(
    remotes: Callable[..., Remote], tmp_path: Path
) -> None:
    page = json.dumps({"events": [], "total": 0, "next_page": None}).encode()

    def moved_once(handler: BaseHTTPRequestHandler) -> None:
        if handler.path.startswith("/api/"):
            reply(303, b"", {"Location": "/moved/page"})(handler)
        else:
            reply(200, page, {"Content-Type": "application/json"})(handler)

    remote = remotes(moved_once)
    env = home_with_a_webhook(tmp_path)
    result = run_cli(env, *COMMANDS["prefect events"](remote.url))
    assert result.returncode == 0, result.stderr
    assert [headers.get("Authorization") for _, _, headers in remote.seen] == [f"Bearer {KEY}"] * 2


WRONG_SHAPES = {
    "prefect events": [b"[1, 2]", b'{"events": [1, 2]}', b'{"events": [{"id": 3}]}'],
    "webhook push": [b'{"events": []}', b'["a", "b"]', b'[{"name": 1}]'],
    "webhook pull": [b'{"webhooks": []}', b'["a", "b"]', b'[{"id": "1", "name": "x"}]'],
}


@pytest.mark.parametrize("command", COMMANDS)
def test_an_answer_cut_short_or_of_the_wrong_shape_is_one_line(
    command: str, remotes: Callable[..., Remote], tmp_path: Path
) -> None:
    env = home_with_a_webhook(tmp_path)
    short = remotes(cut_short)
    assert "cut its answer short (10 of 1000 bytes came)" in one_line(
        run_cli(env, *COMMANDS[command](short.url))
    )
    for body in WRONG_SHAPES[command]:
        wrong = remotes(reply(200, body, {"Content-Type": "application/json"}))
        line = one_line(run_cli(env, *COMMANDS[command](wrong.url)))
        assert "does not look like a" in line and "API" in line, line


@pytest.mark.parametrize("command", COMMANDS)
def test_an_answer_larger_than_any_prefect_gives_is_refused_unread(
    command: str, remotes: Callable[..., Remote], tmp_path: Path
) -> None:
    env = home_with_a_webhook(tmp_path)
    huge = remotes(declares_two_gigabytes)
    line = one_line(run_cli(env, *COMMANDS[command](huge.url)))
    assert "answered with more than 100,000,000 bytes" in line


# The peak of this program's own memory: VmHWM starts afresh at exec, where ru_maxrss keeps the
# size of the process that forked it (a large pytest would count against the child).
MEASURED = """
import atexit, runpy, sys
def peak():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                print("peak", line.split()[1], file=sys.stderr)
atexit.register(peak)
sys.argv = ["hooklab", *sys.argv[1:]]
runpy.run_module("hooklab", run_name="__main__")
"""


def test_an_endless_answer_is_cut_at_the_cap_in_bounded_memory(
    remotes: Callable[..., Remote], tmp_path: Path
) -> None:
    env = home_with_a_webhook(tmp_path)
    remote = remotes(endless)
    result = subprocess.run(
        [sys.executable, "-c", MEASURED, *COMMANDS["prefect events"](remote.url)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    *lines, peak = result.stderr.splitlines()
    # 600 MB came at it; it kept at most the cap (kilobytes, as /proc counts them).
    assert int(peak.split()[1]) < 400_000
    assert result.returncode == 1 and len(lines) == 1, result.stderr
    assert "answered with more than 100,000,000 bytes" in lines[0]


def hanging_listener() -> socket.socket:
    """Accepts connections (the kernel does) and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    return listener


def test_a_hanging_remote_is_a_timeout_after_n_seconds_not_a_status() -> None:
    listener = hanging_listener()
    try:
        api = PrefectApi(f"http://127.0.0.1:{listener.getsockname()[1]}/api", timeout=0.5)
        with pytest.raises(PrefectError) as hung:
            api.post("/events/filter", {})
    finally:
        listener.close()
    assert str(hung.value).endswith("/api timed out after 0.5 s")


def collect_lines(stream: IO[str]) -> list[tuple[float, str]]:
    """Each line of a child's pipe with when it came, gathered by a thread as they come."""
    lines: list[tuple[float, str]] = []

    def read() -> None:
        for line in stream:
            lines.append((time.monotonic(), line))

    threading.Thread(target=read, daemon=True).start()
    return lines


def wait_for(check: Callable[[], bool], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while not check() and time.monotonic() < deadline:
        time.sleep(0.05)
    return check()


def test_forwarding_to_a_hanging_remote_says_it_timed_out(tmp_path: Path) -> None:
    listener = hanging_listener()
    url = f"http://127.0.0.1:{listener.getsockname()[1]}/api"
    env = home_with_a_webhook(tmp_path)
    ws = Workspace(tmp_path / "hooklab.db")
    ws.forward_to(url)
    [hook] = ws.list_webhooks()
    ws.receive(hook.slug, HookRequest.fake(method="POST", json={"n": 2}))
    errors: list[str] = []
    sender = Forwarding(ws, timeout=0.5, on_error=lambda _u, line: errors.append(line))
    sender.start()
    try:
        assert wait_for(lambda: bool(errors), 10)
    finally:
        sender.close()
        listener.close()
        ws.close()
    assert errors[0] == f"Prefect at {url} timed out after 0.5 s"
    shown = json.loads(run_cli(env, "forward", "status", "-o", "json").stdout)
    assert shown[0]["last_error"] == errors[-1] and shown[0]["failing"] is True
    assert "599" not in shown[0]["last_error"]


def web_page(handler: BaseHTTPRequestHandler) -> None:
    """What a plain web server, or a proxy's login page, answers to anything."""
    reply(200, b"<html>Please log in</html>", {"Content-Type": "text/html"})(handler)


def test_a_backfill_to_a_plain_web_server_is_one_line(
    remotes: Callable[..., Remote], tmp_path: Path
) -> None:
    env = home_with_a_webhook(tmp_path)
    page = remotes(web_page)
    line = one_line(run_cli(env, "forward", "--to", f"{page.url}/api"))
    assert line.startswith(f"not a Prefect API: {page.url}/api answered the request to open")


def test_serve_forwarding_to_a_plain_web_server_backs_off_without_a_traceback(
    remotes: Callable[..., Remote], tmp_path: Path
) -> None:
    env = home_with_a_webhook(tmp_path)
    page = remotes(web_page)
    command = [sys.executable, "-m", "hooklab.server", "--home", str(tmp_path), "--port", "0"]
    serve = subprocess.Popen(
        [*command, "--forward-to", f"{page.url}/api"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert serve.stdout is not None
        base = served_url(serve.stdout.readline())
        out = collect_lines(serve.stdout)
        ws = Workspace(tmp_path / "hooklab.db")
        [hook] = ws.list_webhooks()
        ws.close()
        urllib.request.urlopen(f"{base}/hooks/{hook.slug}", b'{"n": 3}', timeout=10).close()
        time.sleep(6)
        shown = json.loads(run_cli(env, "forward", "status", "-o", "json").stdout)
        tried = len(page.seen)
        # Removed from the store: the running server stops sending there at once.
        stop = run_cli(env, "forward", "stop", f"{page.url}/api")
        assert stop.returncode == 0, stop.stderr
        assert stop.stdout.startswith(f"Stopped forwarding to {page.url}/api: removed from the ")
        assert "1 pending event dropped" in stop.stdout
        stopped_at = time.monotonic()
        time.sleep(5)
    finally:
        serve.terminate()
        _, said = serve.communicate(timeout=30)
    assert shown[0]["last_error"].startswith("not a Prefect API: ")
    assert "Traceback" not in said and "forwarding process ended" not in said
    tries = [line for line in said.splitlines() if "not a Prefect API" in line]
    # Backing off: tries at about 0, 0.5, 1.5, 3.5 s; no restart loop; and told once, not
    # once a try (thousands of lines a day in a long outage).
    assert 3 <= tried <= 5 and len(tries) == 1
    assert f"forwarding to {page.url}/api failed, will retry" in tries[0]
    [(at, _told)] = [
        (at, line)
        for at, line in out
        if line.endswith(f"forwarding to {page.url}/api stopped: it was removed from the store\n")
    ]
    assert at - stopped_at < 3
    assert (
        len(page.seen) == tried
        and json.loads(run_cli(env, "forward", "status", "-o", "json").stdout) == []
    )


def test_a_password_in_a_url_is_never_printed(tmp_path: Path) -> None:
    env = home_with_a_webhook(tmp_path)
    listener = hanging_listener()
    port = listener.getsockname()[1]
    listener.close()  # now a closed port
    secret = "S3cretInTheUrl"
    backfill = run_cli(env, "forward", "--to", f"http://user:{secret}@127.0.0.1:{port}/api")
    assert f"cannot reach Prefect at http://127.0.0.1:{port}/api" in one_line(backfill)
    serve_command = [sys.executable, "-m", "hooklab.server", "--home", str(tmp_path)]
    serve = subprocess.run(
        [*serve_command, "--forward-to", f"ftp://user:{secret}@example.org/api"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert (
        serve.returncode == 2 and "not a Prefect API URL: 'ftp://example.org/api'" in serve.stderr
    )
    push = run_cli(env, "webhook", "push", "models", "--to", f"http://u:{secret}@127.0.0.1/api")
    assert push.returncode == 2 and "the URL holds credentials" in push.stderr
    for result in (backfill, serve, push):
        assert secret not in result.stdout + result.stderr


def test_a_destination_stopped_on_a_shared_store_is_left_by_every_replica(
    remotes: Callable[..., Remote], tmp_path: Path, postgres_url: str
) -> None:
    page = remotes(web_page)
    destination = f"{page.url}/api"
    ws = Workspace(postgres_url)
    hook = ws.create_webhook("models", TEMPLATE)
    ws.close()
    env = {"PREFECT_API_KEY": KEY, "HOOKLAB_OUTBOX_LEASE": "1"}
    # Only the first names the destination; it is the store's, so the second forwards too.
    with replicas(tmp_path, postgres_url, 1, "--forward-to", destination, env=env) as [first]:
        (tmp_path / "b").mkdir()
        with replicas(tmp_path / "b", postgres_url, 1, env=env) as [second]:
            for n in range(3):
                body = f'{{"n": {n}}}'.encode()
                assert post(second.base, hook.slug, body, content_type="application/json") == 204
            assert seconds_until(lambda: len(page.seen) >= 2, 10) < 10
            first.kill()  # its claims run out in a second: the second one sends them
            seen = len(page.seen)
            assert seconds_until(lambda: len(page.seen) > seen, 20) < 20
            stop = run_cli(
                base_env(HOOKLAB_HOME=str(tmp_path), HOOKLAB_STORE=postgres_url),
                "forward",
                "stop",
                destination,
            )
            assert stop.returncode == 0, stop.stderr
            assert "3 pending events dropped" in stop.stdout
            time.sleep(1)
            tried = len(page.seen)
            time.sleep(12)  # past the next tries of its backoff
            assert len(page.seen) == tried
            said = second.said()
    assert said.count(f"forwarding to {destination} failed, will retry") == 1, said
