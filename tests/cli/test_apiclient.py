"""The management-API client against a real `python -m hooklab.server` on loopback."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from cli_support import TEMPLATE, hooklab_server

from hooklab.cli.apiclient import ApiClient, ApiError, api_base

ADMIN_KEY = "hlak_client-test"


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with hooklab_server(tmp_path_factory.mktemp("server"), ADMIN_KEY) as base:
        yield base


@pytest.fixture
def client(url: str) -> ApiClient:
    return ApiClient(url, ADMIN_KEY)


def test_api_base_adds_the_short_alias_only_to_a_bare_address() -> None:
    assert api_base("http://127.0.0.1:8765") == "http://127.0.0.1:8765/api"
    assert api_base("http://127.0.0.1:8765/") == "http://127.0.0.1:8765/api"
    full = "https://example.test/api/accounts/a/workspaces/w"
    assert api_base(full + "/") == full
    with pytest.raises(ValueError, match="not an http"):
        api_base("127.0.0.1:8765")


def test_webhook_round_trip(client: ApiClient) -> None:
    hook = client.create_webhook("round-trip", TEMPLATE, "described")
    assert client.read_webhook(hook["id"]) == hook
    assert hook["id"] in [h["id"] for h in client.list_webhooks()]

    client.replace_webhook(hook["id"], "renamed", "again", TEMPLATE)
    client.patch_webhook(hook["id"], {"enabled": False})
    after = client.read_webhook(hook["id"])
    assert (after["name"], after["description"], after["enabled"]) == ("renamed", "again", False)

    rotated = client.rotate_webhook(hook["id"])
    assert rotated["slug"] != hook["slug"]
    client.delete_webhook(hook["id"])
    with pytest.raises(ApiError) as caught:
        client.read_webhook(hook["id"])
    assert caught.value.status == 404


def test_the_full_workspace_path_reaches_the_same_api(client: ApiClient, url: str) -> None:
    hook = client.create_webhook("pathed", TEMPLATE)
    full = f"{url}/api/accounts/{hook['account']}/workspaces/{hook['workspace']}"
    assert ApiClient(full, ADMIN_KEY).read_webhook(hook["id"])["name"] == "pathed"


def test_an_invalid_body_reads_as_one_line(client: ApiClient) -> None:
    with pytest.raises(ApiError) as caught:
        client.create_webhook("broken", '{"event": {{ }')
    assert caught.value.status == 422
    assert caught.value.detail.startswith("Invalid template: line 1")
    assert "\n" not in str(caught.value)


def test_service_accounts_and_enforcement(client: ApiClient) -> None:
    account = client.create_service_account("sender")
    assert account["api_key"].startswith("hlsa_")
    listed = {a["id"]: a for a in client.list_service_accounts()}
    assert listed[account["id"]]["name"] == "sender"
    assert "api_key" not in listed[account["id"]]
    assert client.set_enforcement(False) == {"enabled": False, "disabled_webhooks": 0}
    client.delete_service_account(account["id"])
    with pytest.raises(ApiError) as caught:
        client.delete_service_account(account["id"])
    assert caught.value.status == 404


def test_a_wrong_key_is_a_401(url: str) -> None:
    with pytest.raises(ApiError) as caught:
        ApiClient(url, "wrong").list_webhooks()
    assert caught.value.status == 401


def test_an_unreachable_server_is_status_0_with_the_address() -> None:
    with socket.socket() as probe:  # a port that was free a moment ago, so nothing listens
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(ApiError) as caught:
        ApiClient(f"http://127.0.0.1:{port}", "key", timeout=5).list_webhooks()
    assert caught.value.status == 0
    assert f"127.0.0.1:{port}/api" in str(caught.value)
