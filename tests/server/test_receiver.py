"""The receiver over real loopback sockets: every status of SPEC 2, rotate, toggle, auth, limits."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from receiver_helpers import (
    STATIC_TEMPLATE,
    Reply,
    api,
    locked,
    run,
    send,
    serving,
    stored_events,
)

from hooklab.core.examples import DYNAMIC_TEMPLATE as SEED_TEMPLATE
from hooklab.core.outcome import Outcome
from hooklab.core.webhooks import Webhook
from hooklab.server import NoRunningLoop, PortInUse, Receiver
from hooklab.workspace import Workspace


@pytest.fixture
def ws(tmp_path: Path) -> Iterator[Workspace]:
    workspace = Workspace(tmp_path / "hooklab.db")
    yield workspace
    workspace.close()


def test_a_form_post_through_the_seed_template_is_stored_then_answered_204(ws: Workspace) -> None:
    hook = ws.create_webhook("models", SEED_TEMPLATE)

    async def scenario() -> None:
        async with serving(ws) as receiver:
            reply = await send(
                receiver.webhook_url(hook), "POST", form={"model": "m1", "friendly_name": "Recs"}
            )
            assert (reply.status, reply.body) == (204, b"")

    run(scenario())
    (event,) = stored_events(ws)
    assert event["event"] == "model-update"
    assert event["resource"] == {
        "prefect.resource.id": "product.models.m1",
        "prefect.resource.name": "Recs",
        "producing-team": "Data Science",
    }
    (stored,) = ws.captured()
    assert stored.request.body == b"model=m1&friendly_name=Recs"
    assert stored.request.client == "127.0.0.1"
    assert stored.status == 204


@pytest.mark.parametrize("method", ["GET", "HEAD", "DELETE"])
def test_header_only_methods_render_a_static_template(ws: Workspace, method: str) -> None:
    hook = ws.create_webhook("pinger", STATIC_TEMPLATE)

    async def scenario() -> int:
        async with serving(ws) as receiver:
            return (await send(receiver.webhook_url(hook) + "?x=1", method)).status

    assert run(scenario()) == 204
    (stored,) = ws.captured()
    assert (stored.request.method, stored.request.query) == (method, "x=1")
    assert stored_events(ws)[0]["resource"]["prefect.resource.id"] == f"pinger.{method}"


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH"])
def test_body_methods_pass_the_json_body_to_the_template(ws: Workspace, method: str) -> None:
    hook = ws.create_webhook(
        "json",
        '{"event": "{{ body.kind }}", "resource": {"prefect.resource.id": "r.{{ method }}"}}',
    )

    async def scenario() -> int:
        async with serving(ws) as receiver:
            return (await send(receiver.webhook_url(hook), method, json={"kind": "k"})).status

    assert run(scenario()) == 204
    assert stored_events(ws)[0]["event"] == "k"


def test_a_bad_request_is_400_with_an_empty_body_and_a_failure_event(ws: Workspace) -> None:
    hook = ws.create_webhook("models", SEED_TEMPLATE)

    async def scenario() -> None:
        async with serving(ws) as receiver:
            reply = await send(
                receiver.webhook_url(hook),
                "POST",
                body="{oops",
                headers={"Content-Type": "application/json"},
            )
            assert (reply.status, reply.body) == (400, b"")

    run(scenario())
    (failed,) = stored_events(ws, failed=True)
    assert failed["event"] == "prefect-cloud.webhook.failed"
    assert failed["error"].startswith("Invalid JSON body")
    assert ws.captured()[0].request.body == b"{oops"


def test_verbose_mode_puts_the_error_text_in_the_400_body(ws: Workspace) -> None:
    hook = ws.create_webhook("broken", '{"event": "x"}')

    async def scenario() -> bytes:
        async with serving(ws, verbose=True) as receiver:
            reply = await send(receiver.webhook_url(hook), "POST", json={})
            assert reply.status == 400
            return reply.body

    body = run(scenario()).decode()
    assert "resource" in body
    assert "Traceback" not in body


def test_an_unknown_slug_is_404_and_records_nothing(ws: Workspace) -> None:
    seen: list[Outcome] = []

    async def scenario() -> None:
        async with serving(ws) as receiver:
            receiver.add_listener(seen.append)
            reply = await send(f"{receiver.url}/hooks/no-such-slug", "POST", json={"a": 1})
            assert (reply.status, reply.body) == (404, b"")
            assert (await send(f"{receiver.url}/elsewhere")).status == 404

    run(scenario())
    assert ws.store.count("requests") == 0
    assert [outcome.status for outcome in seen] == [404]


def test_rotate_makes_the_old_url_answer_404_at_once(ws: Workspace) -> None:
    hook = ws.create_webhook("models", STATIC_TEMPLATE)

    async def scenario() -> None:
        async with serving(ws) as receiver:
            old_url = receiver.webhook_url(hook)
            assert (await send(old_url)).status == 204  # the slug is now cached
            rotated = ws.rotate_webhook(hook.id)
            assert (await send(old_url)).status == 404
            assert (await send(receiver.webhook_url(rotated))).status == 204

    run(scenario())


def test_rotate_from_another_process_is_seen_at_once(ws: Workspace) -> None:
    hook = ws.create_webhook("models", STATIC_TEMPLATE)

    async def scenario() -> None:
        async with serving(ws) as receiver:
            old_url = receiver.webhook_url(hook)
            assert (await send(old_url)).status == 204
            # Another connection to the same file, as the CLI in another process would use.
            other = Workspace(ws.path)
            rotated = other.rotate_webhook(hook.id)
            other.close()
            assert (await send(old_url)).status == 404
            assert (await send(receiver.webhook_url(rotated))).status == 204

    run(scenario())


def test_toggle_disables_with_400_then_enables_again(ws: Workspace) -> None:
    hook = ws.create_webhook("models", STATIC_TEMPLATE)

    async def scenario() -> None:
        async with serving(ws, verbose=True) as receiver:
            url = receiver.webhook_url(hook)
            ws.toggle_webhook(hook.id)
            reply = await send(url)
            assert (reply.status, reply.body) == (400, b"Webhook is disabled\n")
            ws.toggle_webhook(hook.id)
            assert (await send(url)).status == 204

    run(scenario())
    assert [stored.status for stored in ws.captured()] == [400, 204]


def test_a_webhook_with_a_service_account_needs_its_bearer_key(ws: Workspace) -> None:
    account, key = ws.create_service_account("sender")
    _, other_key = ws.create_service_account("someone else")
    hook = ws.create_webhook("guarded", STATIC_TEMPLATE, service_account_id=account.id)

    async def scenario() -> list[int]:
        async with serving(ws, verbose=True) as receiver:
            url = receiver.webhook_url(hook)
            statuses = []
            for headers in ({}, {"Authorization": f"Bearer {other_key}"}):
                reply = await send(url, "POST", json={}, headers=headers)
                assert other_key.encode() not in reply.body
                statuses.append(reply.status)
            reply = await send(url, "POST", json={}, headers={"Authorization": f"Bearer {key}"})
            statuses.append(reply.status)
            return statuses

    assert run(scenario()) == [401, 401, 204]
    for stored in ws.captured():
        assert "authorization" not in {name.lower() for name, _ in stored.request.headers}
    failures = stored_events(ws, failed=True)
    assert len(failures) == 2
    assert other_key not in repr(failures)
    assert key not in repr(stored_events(ws))


def test_enforcement_disables_webhooks_without_an_account(ws: Workspace) -> None:
    open_hook = ws.create_webhook("open", STATIC_TEMPLATE)
    account, key = ws.create_service_account("sender")
    guarded = ws.create_webhook("guarded", STATIC_TEMPLATE, service_account_id=account.id)

    async def scenario() -> list[int]:
        async with serving(ws) as receiver:
            ws.set_enforcement(True)
            auth = {"Authorization": f"Bearer {key}"}
            return [
                (await send(receiver.webhook_url(open_hook))).status,
                (await send(receiver.webhook_url(guarded), headers=auth)).status,
            ]

    assert run(scenario()) == [400, 204]


def test_a_body_over_the_limit_is_refused_unread_with_a_failure_event(ws: Workspace) -> None:
    hook = ws.create_webhook("models", SEED_TEMPLATE)

    async def scenario() -> list[int]:
        async with serving(ws, max_body=1000, verbose=True) as receiver:
            url = receiver.webhook_url(hook)
            declared = await send(url, "POST", body=b"x" * 5000)
            assert declared.body == b"Request body is larger than the limit of 1000 bytes\n"
            chunked = await _chunked_post(receiver, hook.slug, [b"y" * 600] * 4)
            fits = await send(url, "POST", form={"model": "m", "friendly_name": "f"})
            return [declared.status, chunked, fits.status]

    assert run(scenario()) == [413, 413, 204]
    failures = stored_events(ws, failed=True)
    assert [f["error"] for f in failures] == [
        "Request body is larger than the limit of 1000 bytes"
    ] * 2
    assert [stored.request.body for stored in ws.captured()][:2] == [b"", b""]


async def _chunked_post(receiver: Receiver, slug: str, chunks: list[bytes]) -> int:
    """A POST with `Transfer-Encoding: chunked`, so the size is known only while reading."""
    reader, writer = await asyncio.open_connection("127.0.0.1", receiver.port)
    head = f"POST /hooks/{slug} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    writer.write(head.encode())
    for chunk in chunks:
        writer.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
    writer.write(b"0\r\n\r\n")
    await writer.drain()
    status_line = await reader.readline()
    writer.close()
    await writer.wait_closed()
    return int(status_line.split()[1])


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def _chunked_head(slug: str) -> bytes:
    return f"POST /hooks/{slug} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n".encode()


def test_a_chunked_body_that_keeps_coming_is_answered_413_once_it_is_too_large(
    ws: Workspace,
) -> None:
    """The answer comes while the sender is still sending, not when (if ever) it ends. It is
    the only answer (no bare 400 from the HTTP server after it); the server ends its side and
    drains up to a limit's worth more of the body, so that the sender reads the answer rather
    than a reset, and then closes."""
    hook = ws.create_webhook("models", SEED_TEMPLATE)

    def send_forever(port: int) -> tuple[bytes, bytes, int]:
        """Sends a chunked body without end until the connection closes: the answer, what
        came after it, and how many bytes were sent after the answer."""
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sender:
            sender.sendall(_chunked_head(hook.slug) + _chunk(b"y" * 600) * 2)  # past the limit
            answer = b""
            while b"\r\n\r\n" not in answer:
                answer += sender.recv(4096)
            time.sleep(0.2)  # time for a reset, were the connection closed with bytes unread
            rest = sender.recv(4096)  # the end of the server's side: b""
            sent = 0
            try:
                for _ in range(5000):  # 500 KB more, unless the connection closes first
                    sender.sendall(_chunk(b"y" * 100))
                    sent += 100
                    time.sleep(0.002)  # so that a reset, once sent, is met
            except OSError:
                pass
            return answer, rest, sent

    async def scenario() -> tuple[bytes, bytes, int]:
        async with serving(ws, max_body=1000) as receiver:
            assert receiver.port is not None
            return await asyncio.to_thread(send_forever, receiver.port)

    answer, rest, sent = run(scenario())
    assert answer.startswith(b"HTTP/1.1 413 ")
    assert b"\r\nConnection: close\r\n" in answer
    assert answer.endswith(b"\r\n\r\n")  # no 400 after it
    assert rest == b""
    assert 500 <= sent < 500_000  # drained, up to about a limit's worth more; then closed
    assert [f["error"] for f in stored_events(ws, failed=True)] == [
        "Request body is larger than the limit of 1000 bytes"
    ]


def test_nothing_after_a_chunked_body_too_large_is_read_as_a_request(ws: Workspace) -> None:
    """The body ended, answered 413: a request pipelined after it is neither stored nor
    answered, since the connection ends with the 413 (a sender that retries it stores it once)."""
    hook = ws.create_webhook("models", "{{ body|tojson }}")
    after = b'{"event": "after", "resource": {"prefect.resource.id": "r"}}'
    pipelined = (
        f"POST /hooks/{hook.slug} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(after)}\r\n\r\n"
    ).encode() + after

    def send(port: int) -> bytes:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sender:
            sender.sendall(
                _chunked_head(hook.slug) + _chunk(b"y" * 1001) + b"0\r\n\r\n" + pipelined
            )
            answers = b""
            while data := sender.recv(4096):
                answers += data
            return answers

    async def scenario() -> bytes:
        async with serving(ws, max_body=1000) as receiver:
            assert receiver.port is not None
            return await asyncio.to_thread(send, receiver.port)

    answers = run(scenario())
    assert answers.startswith(b"HTTP/1.1 413 ")
    assert answers.count(b"HTTP/1.1") == 1
    assert [stored.status for stored in ws.captured()] == [413]


@pytest.mark.parametrize("verbose", [True, False], ids=["verbose", "quiet"])
def test_a_length_past_any_body_read_is_answered_413_with_the_limit(
    ws: Workspace, verbose: bool
) -> None:
    """Only the headers, declaring more than the HTTP server itself reads (its limit is 64
    bodies, and at least 100 MB): the same 413 as any body over the limit, not a bare 400."""
    hook = ws.create_webhook("models", SEED_TEMPLATE)

    async def scenario() -> bytes:
        async with serving(ws, verbose=verbose) as receiver:
            reader, writer = await asyncio.open_connection("127.0.0.1", receiver.port)
            head = (
                f"POST /hooks/{hook.slug} HTTP/1.1\r\nHost: x\r\nContent-Length: {10**12}\r\n\r\n"
            )
            writer.write(head.encode())
            await writer.drain()
            answer = await reader.read()  # the receiver closes the connection after it
            writer.close()
            return answer

    head, _, body = run(scenario()).partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413 ")
    line = "Request body is larger than the limit of 1500000 bytes"
    assert body == (f"{line}\n".encode() if verbose else b"")
    (failure,) = stored_events(ws, failed=True)
    assert failure["error"] == line
    (stored,) = ws.captured()
    assert (stored.status, stored.request.body) == (413, b"")


class BuggyWorkspace(Workspace):
    """A bug below the server: processing a request, listing webhooks or reading one raises
    (the last a ValueError, as a bug in pandas raises: a bug all the same)."""

    def process(self, *args: Any, **kwargs: Any) -> Outcome:
        raise RuntimeError("a bug in hooklab")

    def list_webhooks(self) -> list[Webhook]:
        raise RuntimeError("a bug in hooklab")

    def webhook_by_id(self, webhook_id: str) -> Webhook | None:
        raise ValueError("All arrays must be of the same length")


def looks_like_a_traceback(body: bytes) -> bool:
    return any(word in body for word in (b"Traceback", b'File "', b"RuntimeError", b"ValueError"))


def test_no_traceback_reaches_a_client(tmp_path: Path) -> None:
    ws = Workspace(tmp_path / "hooklab.db")
    static = ws.create_webhook("static", STATIC_TEMPLATE)
    loops = '{% for i in range(1000) %}{% endfor %}{"event": "e", "resource": {}}'
    too_long = ws.create_webhook("too-long", loops)

    async def answers() -> dict[str, Reply]:
        async with serving(ws, verbose=True) as receiver:
            replies = {
                "method not allowed": await send(receiver.webhook_url(static), "OPTIONS"),
                "render error": await send(receiver.webhook_url(too_long), "POST"),
            }
            holder = locked(tmp_path / "hooklab.db")
            replies["store cannot write"] = await send(receiver.webhook_url(static), "POST")
            holder.execute("ROLLBACK")
            holder.close()
            return replies

    async def bug_answers() -> dict[str, Reply]:
        buggy = BuggyWorkspace(tmp_path / "hooklab.db")
        try:
            async with serving(buggy, verbose=True) as receiver:
                return {
                    "bug in a hook": await send(receiver.webhook_url(static), "POST"),
                    "bug in the API": await api(receiver, "POST", "/webhooks/filter", {}),
                    "ValueError bug in the API": await api(
                        receiver, "GET", f"/webhooks/{static.id}"
                    ),
                }
        finally:
            buggy.close()

    replies = run(answers())
    (failure,) = stored_events(ws, failed=True)
    ws.close()
    replies.update(run(bug_answers()))
    assert {name: reply.status for name, reply in replies.items()} == {
        "method not allowed": 405,
        "render error": 400,
        "store cannot write": 503,
        "bug in a hook": 503,
        "bug in the API": 500,
        "ValueError bug in the API": 500,
    }
    assert not [name for name, reply in replies.items() if looks_like_a_traceback(reply.body)]
    # What each does say: nothing, the one-line reason (verbose mode), or a JSON detail.
    assert replies["method not allowed"].body == b""
    assert replies["render error"].body == f"{failure['error']}\n".encode()
    assert "range" in failure["error"] and "\n" not in failure["error"]
    assert replies["store cannot write"].body == replies["bug in a hook"].body == b""
    assert replies["bug in a hook"].headers["Retry-After"] == "5"
    assert replies["bug in the API"].json() == {"detail": "Internal Server Error"}
    assert replies["ValueError bug in the API"].json() == {"detail": "Internal Server Error"}


def test_the_receiver_binds_loopback_picks_a_free_port_and_starts_once(ws: Workspace) -> None:
    async def scenario() -> None:
        receiver = Receiver(ws)
        assert receiver.start() is receiver.start()
        assert receiver.url == f"http://127.0.0.1:{receiver.port}"
        assert receiver.port and receiver.port > 0
        receiver.stop()
        receiver.stop()
        assert not receiver.running
        await asyncio.sleep(0.05)

    run(scenario())


def test_a_port_in_use_is_a_clear_error(ws: Workspace) -> None:
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]

    async def scenario() -> None:
        with pytest.raises(PortInUse, match=f"127.0.0.1:{port}: address already in use"):
            Receiver(ws, port=port).start()

    try:
        run(scenario())
    finally:
        taken.close()


def test_start_outside_a_running_loop_says_what_to_do(ws: Workspace) -> None:
    with pytest.raises(NoRunningLoop, match="running event loop"):
        Receiver(ws).start()


def test_listeners_hear_each_outcome_after_it_is_committed(ws: Workspace) -> None:
    hook = ws.create_webhook("models", SEED_TEMPLATE)
    heard: list[tuple[int, int]] = []

    def listener(outcome: Outcome) -> None:
        heard.append((outcome.status, ws.store.count("requests")))

    def broken(outcome: Outcome) -> None:
        raise RuntimeError("a listener bug")

    async def scenario() -> None:
        async with serving(ws) as receiver:
            receiver.add_listener(broken)
            receiver.add_listener(listener)
            await send(
                receiver.webhook_url(hook), "POST", form={"model": "a", "friendly_name": "b"}
            )
            receiver.remove_listener(listener)
            await send(
                receiver.webhook_url(hook), "POST", form={"model": "a", "friendly_name": "b"}
            )

    run(scenario())
    assert heard == [(204, 1)]


def test_concurrent_requests_are_all_stored_before_their_answers(ws: Workspace) -> None:
    hook = ws.create_webhook("models", SEED_TEMPLATE)

    async def scenario() -> list[int]:
        async with serving(ws) as receiver:
            url = receiver.webhook_url(hook)
            replies = await asyncio.gather(
                *(
                    send(url, "POST", form={"model": f"m{i}", "friendly_name": "f"})
                    for i in range(60)
                )
            )
            return [reply.status for reply in replies]

    assert run(scenario()) == [204] * 60
    stored = {stored.request.body for stored in ws.captured()}
    assert stored == {f"model=m{i}&friendly_name=f".encode() for i in range(60)}


def test_a_hook_keeps_its_query_string_and_a_request_without_host_is_refused(
    ws: Workspace,
) -> None:
    hook = ws.create_webhook("models", STATIC_TEMPLATE)

    async def scenario() -> tuple[int, int]:
        async with serving(ws) as receiver:
            with_query = await send(receiver.webhook_url(hook) + "?a=1&b=two", "POST", body=b"")
            reader, writer = await asyncio.open_connection("127.0.0.1", receiver.port)
            writer.write(f"POST /hooks/{hook.slug} HTTP/1.1\r\nContent-Length: 0\r\n\r\n".encode())
            await writer.drain()
            status_line = await reader.readline()
            writer.close()
            await writer.wait_closed()
            return with_query.status, int(status_line.split()[1])

    assert run(scenario()) == (204, 400)  # HTTP/1.1 requires Host; Tornado refuses it unread
    (stored,) = ws.captured()
    assert (stored.request.path, stored.request.query) == (f"/hooks/{hook.slug}", "a=1&b=two")


def test_a_stored_template_nested_too_deeply_fails_each_request_with_400(ws: Workspace) -> None:
    # Stored as it was written (by an older hooklab, or copied from another store).
    deep = '{"event": "x",\n "n": {{ ' + "(" * 5000 + "1" + ")" * 5000 + " }}}"
    hook = ws.create_webhook("deep", STATIC_TEMPLATE)
    ws.store.save_webhook(replace(hook, template=deep))

    async def scenario() -> int:
        async with serving(ws) as receiver:
            return (await send(receiver.webhook_url(hook), "POST", json={"a": 1})).status

    assert run(scenario()) == 400
    (failed,) = stored_events(ws, failed=True)
    assert failed["event"] == "prefect-cloud.webhook.failed"
    assert failed["payload"]["error"].startswith("line 2: Nested too deeply")


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (
            "[" * 100_000 + "]" * 100_000,
            "Invalid JSON body: nested too deeply (more brackets inside one another than can be "
            "read)",
        ),
        (
            '{"n": ' + "7" * 5000 + "}",
            "Invalid JSON body: a number has more than 4300 digits, more than can be read",
        ),
    ],
)
def test_a_json_body_python_cannot_read_fails_in_the_senders_words(
    ws: Workspace, body: str, error: str
) -> None:
    hook = ws.create_webhook("json", STATIC_TEMPLATE)

    async def scenario() -> int:
        async with serving(ws) as receiver:
            headers = {"Content-Type": "application/json"}
            return (
                await send(receiver.webhook_url(hook), "POST", body=body, headers=headers)
            ).status

    assert run(scenario()) == 400
    (failed,) = stored_events(ws, failed=True)
    assert failed["payload"]["error"] == error


def test_credential_headers_reach_the_template_but_are_never_stored(ws: Workspace) -> None:
    template = (
        '{"event": "e", "resource": {"prefect.resource.id": "r"}, '
        '"related": [{"prefect.resource.id": "{{ headers[\'X-Api-Key\'] }}", '
        '"prefect.resource.role": "seen"}]}'
    )
    without_payload = ws.create_webhook("default-payload", STATIC_TEMPLATE)
    reading = ws.create_webhook("reads-the-key", template)
    credentials = {
        "Authorization": "Bearer auth-secret",
        "Proxy-Authorization": "Basic proxy-secret",
        "Cookie": "session=cookie-secret",
        "X-Api-Key": "key-secret",
        "X-Kept": "kept",
    }

    async def scenario() -> list[int]:
        async with serving(ws) as receiver:
            return [
                (
                    await send(receiver.webhook_url(hook), "POST", json={}, headers=credentials)
                ).status
                for hook in (without_payload, reading)
            ]

    assert run(scenario()) == [204, 204]
    # The template saw the key when the request came, as Prefect Cloud would show it.
    seen = [e for e in stored_events(ws) if e["related"][0].get("prefect.resource.role") == "seen"]
    assert seen[0]["related"][0]["prefect.resource.id"] == "key-secret"
    # Nothing else of them is kept: not in the requests, not in a default payload.
    stored = [dict(request.request.headers) for request in ws.captured()]
    assert all(headers["X-Kept"] == "kept" for headers in stored)
    everything = repr(stored) + repr([e["payload"] for e in stored_events(ws)])
    for secret in ("auth-secret", "proxy-secret", "cookie-secret", "key-secret"):
        assert secret not in everything


def test_ten_thousand_headers_are_a_431_not_a_dropped_connection(ws: Workspace) -> None:
    hook = ws.create_webhook("models", STATIC_TEMPLATE)

    async def status_of(port: int, path: str, fields: int) -> bytes:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        filler = "".join(f"X-Filler-{n}: value\r\n" for n in range(fields))
        writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\n{filler}\r\n".encode())
        await writer.drain()
        line = await asyncio.wait_for(reader.readline(), 10)
        writer.close()
        return line

    async def scenario() -> list[bytes]:
        async with serving(ws) as receiver:
            assert receiver.port is not None
            paths = [f"/hooks/{hook.slug}", "/api/webhooks/", f"/hooks/{hook.slug}"]
            return [
                await status_of(receiver.port, path, fields)
                for path, fields in zip(paths, [10_000, 10_000, 20], strict=True)
            ]

    assert run(scenario()) == [
        b"HTTP/1.1 431 Request Header Fields Too Large\r\n",
        b"HTTP/1.1 431 Request Header Fields Too Large\r\n",
        b"HTTP/1.1 204 No Content\r\n",
    ]
    assert len(ws.requests()) == 1  # the one with headers of a usual size
