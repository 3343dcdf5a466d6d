"""Prefect's events back as DataFrames, and the CLI's forward/prefect commands, against a real
Prefect server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_support import base_env, run_cli
from prefect_support import AUTH, PrefectServer

from hooklab.core.request import HookRequest
from hooklab.prefect import forward_history, read_events
from hooklab.prefect.client import Credentials
from hooklab.workspace import Workspace

TEMPLATE = (
    '{"event": "{{ body.kind }}", "resource": {"prefect.resource.id": "item.{{ body.n }}", '
    '"prefect.resource.name": "Item {{ body.n }}"}}'
)


def test_read_events_pages_past_50_with_the_columns_of_workspace_events(
    prefect_server: PrefectServer, tmp_path: Path
) -> None:
    ws = Workspace(tmp_path / "hooklab.db")
    hook = ws.create_webhook("paged", TEMPLATE)
    for n in range(120):
        ws.receive(hook.slug, HookRequest.fake(method="POST", json={"kind": "paged.item", "n": n}))
    broken = {"kind": "paged.broken", "n": '"'}  # a quote in the resource id: invalid JSON
    assert ws.receive(hook.slug, HookRequest.fake(method="POST", json=broken)).status == 400
    sent = forward_history(ws, prefect_server.url, credentials=Credentials(auth_string=AUTH))
    assert sent == 121
    prefect_server.wait_for_events("paged.", 120)
    prefect_server.wait_for_events("prefect-cloud.webhook.failed", 1)
    seen: list[tuple[int, int]] = []
    frame = read_events(
        prefect_server.url,
        since="1d",
        event="paged.*",
        auth_string=AUTH,
        progress=lambda done, total: seen.append((done, total)),
    )
    local = ws.events(event="paged.item")
    assert list(frame.columns) == list(local.columns)
    assert list(frame["id"]) == list(local["id"])  # all 120, oldest first
    assert set(frame["webhook_name"]) == {"paged"}
    assert list(frame["resource.name"][:2]) == ["Item 0", "Item 1"]
    assert seen and seen[-1] == (120, 120)
    limited = read_events(
        prefect_server.url, since="1d", event="paged.item", limit=7, auth_string=AUTH
    )
    assert len(limited) == 7
    failed = read_events(
        prefect_server.url, since="1d", event="prefect-cloud.webhook.failed", auth_string=AUTH
    )
    assert list(failed["failed"]) == [True]
    assert failed["error"][0] == ws.events(failed=True)["error"][0]
    ws.close()


def test_cli_forward_status_backfill_and_prefect_events(
    prefect_server: PrefectServer, tmp_path: Path
) -> None:
    ws = Workspace(tmp_path / "hooklab.db")
    hook = ws.create_webhook("cli", TEMPLATE)
    ws.forward_to(prefect_server.url)
    for n in range(3):
        ws.receive(hook.slug, HookRequest.fake(method="POST", json={"kind": "cli.item", "n": n}))
    ws.close()
    env = base_env(HOOKLAB_HOME=str(tmp_path), PREFECT_API_AUTH_STRING=AUTH)

    status = run_cli(env, "forward", "status", "-o", "json")
    [state] = json.loads(status.stdout)
    assert (state["destination"], state["pending"], state["delivered"]) == (
        prefect_server.url,
        3,
        0,
    )
    table = run_cli(env, "forward", "status")
    assert prefect_server.url in table.stdout and "pending" in table.stdout

    sent = run_cli(env, "forward", "--to", prefect_server.url, "--since", "1h")
    assert sent.returncode == 0, sent.stderr
    assert sent.stdout.strip() == f"Sent 3 event(s) to {prefect_server.url}."
    prefect_server.wait_for_events("cli.", 3)

    listed = run_cli(
        env, "prefect", "events", prefect_server.url, "--since", "1h", "--event", "cli.item"
    )
    assert listed.returncode == 0, listed.stderr
    assert [line.split()[2] for line in listed.stdout.splitlines()[2:]] == [
        "cli.item",
        "cli.item",
        "cli.item",
    ]
    denied = run_cli(
        base_env(HOOKLAB_HOME=str(tmp_path)),
        "prefect",
        "events",
        prefect_server.url,
        "--since",
        "1h",
    )
    assert denied.returncode == 1
    assert denied.stderr.strip().startswith("Unauthorized: Prefect at")
    assert len(denied.stderr.strip().splitlines()) == 1


def test_magics_forward_and_read_prefect_events(
    prefect_server: PrefectServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from IPython.core.interactiveshell import InteractiveShell

    from hooklab.notebook.magics import HooklabMagics

    monkeypatch.setenv("PREFECT_API_AUTH_STRING", AUTH)
    ip = InteractiveShell.instance()
    ip.run_line_magic("load_ext", "hooklab")
    ip.run_line_magic("config", f"HooklabMagics.home = {str(tmp_path)!r}")
    try:
        ip.run_line_magic("config", f"HooklabMagics.forward_to = {prefect_server.url!r}")
        ws = ip.run_line_magic("hooklab", "workspace")
        hook = ws.create_webhook("magic", TEMPLATE)
        for n in range(2):
            ws.receive(hook.slug, HookRequest.fake(method="POST", json={"kind": "magic.x", "n": n}))
        prefect_server.wait_for_events("magic.", 2)
        status = ip.run_line_magic("hooklab", "forward")
        assert list(status["destination"]) == [prefect_server.url]
        frame = ip.run_line_magic(
            "hooklab", f"prefect-events {prefect_server.url} --since 1h --event magic.x"
        )
        assert list(frame["id"]) == list(ws.events()["id"])
    finally:
        ip.run_line_magic("unload_ext", "hooklab")
        for magics in list(ip.configurables):
            if isinstance(magics, HooklabMagics):
                magics._new_workspace(None)
                ip.configurables.remove(magics)
        InteractiveShell.clear_instance()
