"""The management API over loopback: Prefect Cloud's webhook routes and JSON, service accounts."""

from __future__ import annotations

import asyncio
import json
import os
import stat
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from receiver_helpers import ADMIN_KEY, STATIC_TEMPLATE, api, run, send, serving

from hooklab.core.examples import DYNAMIC_TEMPLATE as SEED_TEMPLATE
from hooklab.server import Receiver
from hooklab.server.api import admin_key
from hooklab.server.receiver import HookReceiver
from hooklab.workspace import Workspace

WEBHOOK_KEYS = {
    "id", "created", "updated", "name", "description", "enabled", "template", "slug",
    "service_account_id", "account", "workspace",
}  # fmt: skip


@pytest.fixture
def ws(tmp_path: Path) -> Iterator[Workspace]:
    workspace = Workspace(tmp_path / "hooklab.db")
    yield workspace
    workspace.close()


def test_create_get_filter_a_webhook_with_prefects_json(ws: Workspace) -> None:
    async def scenario() -> None:
        async with serving(ws) as receiver:
            created = await api(
                receiver,
                "POST",
                "/webhooks/",
                {"name": "models", "description": "d", "template": SEED_TEMPLATE},
            )
            assert created.status == 201
            hook = created.json()
            assert set(hook) == WEBHOOK_KEYS
            assert hook["enabled"] is True and hook["service_account_id"] is None
            assert (hook["account"], hook["workspace"]) == (ws.account_id, ws.workspace_id)
            assert len(hook["slug"]) == 22
            got = await api(receiver, "GET", f"/webhooks/{hook['id']}")
            assert got.json() == hook
            listed = await api(receiver, "POST", "/webhooks/filter")
            assert listed.json() == [hook]
            reply = await send(
                receiver.webhook_url(hook["slug"]),
                "POST",
                form={"model": "m", "friendly_name": "f"},
            )
            assert reply.status == 204

    run(scenario())


def test_the_account_and_workspace_path_serves_the_same_routes(ws: Workspace) -> None:
    hook = ws.create_webhook("models", STATIC_TEMPLATE)

    async def scenario() -> None:
        async with serving(ws) as receiver:
            long = f"/accounts/{ws.account_id}/workspaces/{ws.workspace_id}"
            got = await api(receiver, "GET", f"{long}/webhooks/{hook.id}")
            assert got.status == 200 and got.json()["id"] == hook.id
            other = await api(receiver, "GET", f"/accounts/x/workspaces/y/webhooks/{hook.id}")
            assert (other.status, other.json()) == (404, {"detail": "Workspace not found"})

    run(scenario())


def test_put_patch_rotate_delete(ws: Workspace) -> None:
    hook = ws.create_webhook("models", STATIC_TEMPLATE)

    async def scenario() -> None:
        async with serving(ws) as receiver:
            path = f"/webhooks/{hook.id}"
            put = await api(
                receiver, "PUT", path, {"name": "renamed", "description": "", "template": "{}"}
            )
            assert (put.status, put.body) == (204, b"")
            assert ws.get_webhook(hook.id).name == "renamed"
            patched = await api(receiver, "PATCH", path, {"enabled": False})
            assert patched.status == 204
            assert (await api(receiver, "GET", path)).json()["enabled"] is False
            assert (await send(receiver.webhook_url(hook))).status == 400
            await api(receiver, "PATCH", path, {"enabled": True, "template": STATIC_TEMPLATE})
            rotated = await api(receiver, "POST", f"{path}/rotate")
            assert rotated.status == 200
            new_slug = rotated.json()["slug"]
            assert new_slug != hook.slug
            assert (await send(receiver.webhook_url(hook))).status == 404
            assert (await send(receiver.webhook_url(new_slug))).status == 204
            deleted = await api(receiver, "DELETE", path)
            assert (deleted.status, deleted.body) == (204, b"")
            assert (await api(receiver, "GET", path)).status == 404
            assert (await send(receiver.webhook_url(new_slug))).status == 404

    run(scenario())
    assert ws.store.count("requests") == 2  # history outlives the webhook


def test_errors_are_json_details(ws: Workspace) -> None:
    hook = ws.create_webhook("models", STATIC_TEMPLATE)

    async def scenario() -> None:
        async with serving(ws) as receiver:
            missing = await api(receiver, "GET", "/webhooks/nope")
            assert (missing.status, missing.json()) == (
                404,
                {"detail": "Webhook with id 'nope' not found."},
            )
            no_name = await api(receiver, "POST", "/webhooks/", {"template": "{}"})
            assert no_name.status == 422
            assert "name" in no_name.json()["detail"]
            bad = await api(receiver, "POST", "/webhooks/", {"name": "x", "template": "{\n{{ a"})
            assert bad.status == 422
            assert bad.json()["detail"].startswith("Invalid template: line 2")
            unknown = await api(receiver, "PATCH", f"/webhooks/{hook.id}", {"colour": "red"})
            assert unknown.status == 422 and "colour" in unknown.json()["detail"]
            not_json = await send(
                f"{receiver.url}/api/webhooks/",
                "POST",
                body="{",
                headers={"Authorization": "Bearer test-admin-key"},
            )
            assert not_json.status == 422
            nowhere = await api(receiver, "GET", "/nowhere")
            assert (nowhere.status, nowhere.json()) == (404, {"detail": "Not Found"})

    run(scenario())


def test_the_admin_key_is_required(ws: Workspace) -> None:
    async def scenario() -> None:
        async with serving(ws) as receiver:
            for key in (None, "wrong"):
                reply = await api(receiver, "POST", "/webhooks/filter", key=key)
                assert reply.status == 401
                assert "admin key" in reply.json()["detail"]
                assert receiver.admin_key not in reply.body.decode()

    run(scenario())


def test_service_accounts_keys_shown_once_and_attached_by_patch(ws: Workspace) -> None:
    hook = ws.create_webhook("guarded", STATIC_TEMPLATE)

    async def scenario() -> None:
        async with serving(ws) as receiver:
            created = await api(receiver, "POST", "/service_accounts/", {"name": "ci"})
            assert created.status == 201
            account = created.json()
            assert set(account) == {"id", "name", "created", "api_key"}
            key = account["api_key"]
            listed = (await api(receiver, "GET", "/service_accounts/")).json()
            assert listed == [{k: account[k] for k in ("id", "name", "created")}]
            one = await api(receiver, "GET", f"/service_accounts/{account['id']}")
            assert one.json() == listed[0]
            assert (await api(receiver, "GET", "/service_accounts/nope")).status == 404
            url = receiver.webhook_url(hook)
            attach = {"service_account_id": account["id"]}
            assert (await api(receiver, "PATCH", f"/webhooks/{hook.id}", attach)).status == 204
            assert (await send(url)).status == 401
            bearer = {"Authorization": f"Bearer {key}"}
            assert (await send(url, headers=bearer)).status == 204
            detach = {"service_account_id": None}
            assert (await api(receiver, "PATCH", f"/webhooks/{hook.id}", detach)).status == 204
            assert (await send(url)).status == 204
            await api(receiver, "PATCH", f"/webhooks/{hook.id}", attach)
            gone = await api(receiver, "DELETE", f"/service_accounts/{account['id']}")
            assert gone.status == 204
            assert (await api(receiver, "GET", f"/webhooks/{hook.id}")).status == 404
            assert (await api(receiver, "GET", "/service_accounts/")).json() == []

    run(scenario())


def test_enforcement_setting(ws: Workspace) -> None:
    hook = ws.create_webhook("open", STATIC_TEMPLATE)

    async def scenario() -> None:
        async with serving(ws) as receiver:
            assert (await api(receiver, "GET", "/settings/enforcement")).json() == {
                "enabled": False
            }
            on = await api(receiver, "PUT", "/settings/enforcement", {"enabled": True})
            assert on.json() == {"enabled": True, "disabled_webhooks": 1}
            assert (await send(receiver.webhook_url(hook))).status == 400
            refused = await api(receiver, "POST", "/webhooks/", {"name": "n", "template": "{}"})
            assert refused.status == 422 and "service account" in refused.json()["detail"]
            enable = await api(receiver, "PATCH", f"/webhooks/{hook.id}", {"enabled": True})
            assert enable.status == 422
            account = (await api(receiver, "POST", "/service_accounts/", {"name": "ci"})).json()
            fixed = {"service_account_id": account["id"], "enabled": True}
            assert (await api(receiver, "PATCH", f"/webhooks/{hook.id}", fixed)).status == 204
            bearer = {"Authorization": f"Bearer {account['api_key']}"}
            assert (await send(receiver.webhook_url(hook), headers=bearer)).status == 204

    run(scenario())


def test_signature_presets_are_set_by_patch_and_never_shown(ws: Workspace) -> None:
    hook = ws.create_webhook("signed", STATIC_TEMPLATE)

    async def scenario() -> None:
        async with serving(ws) as receiver:
            path = f"/webhooks/{hook.id}"
            body = {"signature_preset": "github", "signature_secret": "a-github-secret-1234"}
            assert (await api(receiver, "PATCH", path, body)).status == 204
            assert b"a-github-secret-1234" not in (await api(receiver, "GET", path)).body
            assert (await send(receiver.webhook_url(hook))).status == 401
            wrong = await api(receiver, "PATCH", path, {"signature_preset": "gitlab"})
            assert wrong.status == 422 and "gitlab" in wrong.json()["detail"]

    run(scenario())


def test_admin_key_from_the_environment_or_a_private_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HOOKLAB_ADMIN_KEY", raising=False)
    first = admin_key(tmp_path)
    assert first == admin_key(tmp_path)
    mode = stat.S_IMODE(os.stat(tmp_path / "admin_key").st_mode)
    assert mode == 0o600
    monkeypatch.setenv("HOOKLAB_ADMIN_KEY", "from-env")
    assert admin_key(tmp_path) == "from-env"


def test_a_notebook_receiver_keeps_its_key_beside_the_database(
    ws: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HOOKLAB_ADMIN_KEY", raising=False)
    receiver = Receiver(ws)
    assert receiver.admin_key == (tmp_path / "admin_key").read_text().strip()


def test_the_receiver_alone_serves_hooks_and_the_server_app_mounts_the_api_beside_them(
    ws: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HOOKLAB_ADMIN_KEY", raising=False)
    hook = ws.create_webhook("pinger", STATIC_TEMPLATE)

    async def statuses(receiver: HookReceiver) -> tuple[int, int]:
        receiver.start()
        try:
            hooked = await send(receiver.webhook_url(hook), "GET")
            listed = await send(
                receiver.url + "/api/webhooks/filter",
                "POST",
                json={},
                headers={"Authorization": f"Bearer {admin_key(tmp_path)}"},
            )
            return hooked.status, listed.status
        finally:
            await receiver.shutdown()

    assert run(statuses(Receiver(ws))) == (204, 200)
    assert run(statuses(HookReceiver(ws))) == (204, 404)
    assert len(ws.captured()) == 2


def test_a_template_nested_too_deeply_is_a_422_naming_its_line(ws: Workspace) -> None:
    deep = '{"event": "x",\n "n": {{ ' + "1 + " * 5000 + "1 }}}"

    async def scenario() -> None:
        async with serving(ws) as receiver:
            created = await api(receiver, "POST", "/webhooks/", {"name": "d", "template": deep})
            assert created.status == 422
            assert created.json()["detail"].startswith("Invalid template: line 2: Nested too deep")
            assert ws.store.webhooks() == []


def test_an_empty_or_short_signature_secret_is_refused_and_lets_nothing_in(ws: Workspace) -> None:
    from hooklab.core.signatures import sign

    hook = ws.create_webhook("signed", STATIC_TEMPLATE)

    async def scenario() -> None:
        async with serving(ws) as receiver:
            path = f"/webhooks/{hook.id}"
            for secret in ["", "   ", "s3cret", "fifteen-chars!!", None]:
                body = {"signature_preset": "github", "signature_secret": secret}
                refused = await api(receiver, "PATCH", path, body)
                assert refused.status == 422, secret
                detail = refused.json()["detail"]
                assert "at least 16 characters" in detail and "\n" not in detail
                assert not (secret or "").strip() or (secret or "").strip() not in detail
            # Nothing was set: a request signed with the empty key is a plain request, and a
            # webhook whose store holds a short secret (set before the minimum) lets none in.
            ws.store.save_webhook(replace(ws.get_webhook(hook.id), signature_preset="github"))
            signed = sign("github", "", b"{}", timestamp=0)
            let_in = await send(receiver.webhook_url(hook), "POST", body=b"{}", headers=signed)
            assert let_in.status == 401
            good = {"signature_preset": "github", "signature_secret": "sixteen-chars!!!"}
            assert (await api(receiver, "PATCH", path, good)).status == 204

    run(scenario())


def test_a_body_nested_too_deeply_is_a_422(ws: Workspace) -> None:
    async def scenario() -> None:
        async with serving(ws) as receiver:
            reply = await send(
                f"{receiver.url}/api/webhooks/",
                "POST",
                body="[" * 100_000 + "]" * 100_000,
                headers={"Authorization": f"Bearer {ADMIN_KEY}"},
            )
            assert reply.status == 422
            assert "nested too deeply" in reply.json()["detail"]

    run(scenario())


async def head_only(port: int, head: str) -> tuple[int, Any]:
    """Send a request's headers and none of the body it announces; the answer's status and
    JSON, which must come while the body is still unsent (else a timeout fails the test)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(head.encode())
        await writer.drain()
        status_line = await asyncio.wait_for(reader.readline(), 5)
        lines = (await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)).split(b"\r\n")
        [length] = [line.split(b":")[1] for line in lines if line.lower().startswith(b"content-l")]
        return int(status_line.split()[1]), json.loads(await reader.readexactly(int(length)))
    finally:
        writer.close()


def test_the_api_asks_for_its_key_and_bounds_a_body_before_reading_it(ws: Workspace) -> None:
    long_path = f"/api/accounts/{ws.account_id}/workspaces/{ws.workspace_id}/webhooks/"
    eighty_mb = "Content-Length: 80000000\r\n"
    key = f"Authorization: Bearer {ADMIN_KEY}\r\n"
    chunk = "2710\r\n" + "x" * 10_000 + "\r\n"

    def post(path: str, *headers: str) -> str:
        return f"POST {path} HTTP/1.1\r\nHost: x\r\n{''.join(headers)}\r\n"

    async def scenario() -> list[tuple[int, Any]]:
        async with serving(ws, max_body=10_000) as receiver:
            assert receiver.port is not None
            heads = [
                post("/api/webhooks/", eighty_mb),  # 80 MB announced, no key
                post("/api/webhooks/", "Authorization: Bearer no\r\n", eighty_mb),
                post(long_path, eighty_mb),
                post("/api/webhooks/", key, eighty_mb),  # the key, and too much body
                post("/api/webhooks/", key, "Transfer-Encoding: chunked\r\n") + chunk * 2,
            ]
            return [await head_only(receiver.port, head) for head in heads]

    no_key = {"detail": "Missing or invalid admin key: send 'Authorization: Bearer <key>'"}
    too_large = {"detail": "The body is larger than the limit of 10000 bytes"}
    assert run(scenario()) == [(401, no_key)] * 3 + [(413, too_large)] * 2
    assert ws.list_webhooks() == []
