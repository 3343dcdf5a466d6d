"""`hooklab webhook export / push / pull`, run as the real command: exports a shell and Terraform
read back unchanged, and a second real `hooklab serve` standing in for Prefect Cloud's API."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_support import base_env, hooklab_server, run_cli
from prefect_support import free_port

CLOUD_KEY = "hlak_cloud-admin-key"
# A template with everything a shell or HCL string could mangle.
NASTY = (
    '{"event": "order.{{ body.kind }}",\n'
    '  "resource": {"prefect.resource.id": "shop.$HOME.`id`.{{ body.id }}",\n'
    '    "note": "it\'s \\"quoted\\", a \\\\ backslash, ${x} %{y} $${z} %%{w} \\t tab"}}'
)
DESCRIPTION = 'Orders\' feed: $PATH, "quotes", `ticks` and a\nsecond line'


@pytest.fixture
def home(tmp_path: Path) -> dict[str, str]:
    return base_env(HOOKLAB_HOME=str(tmp_path / "home"))


@pytest.fixture
def cloud(tmp_path: Path) -> Iterator[str]:
    """A second real `hooklab serve`: the Prefect-Cloud-shaped webhook API; yields its URL."""
    with hooklab_server(tmp_path / "cloud", CLOUD_KEY) as base:
        yield base


def ok(env: dict[str, str], *args: str) -> str:
    result = run_cli(env, *args)
    assert result.returncode == 0, result.stderr
    return result.stdout


def cloud_hooks(url: str) -> list[dict[str, object]]:
    env = base_env(HOOKLAB_API_URL=url, HOOKLAB_API_KEY=CLOUD_KEY)
    return list(json.loads(ok(env, "webhook", "ls", "-o", "json")))


def local_hooks(env: dict[str, str]) -> list[dict[str, object]]:
    return list(json.loads(ok(env, "webhook", "ls", "-o", "json")))


# Export


def test_the_prefect_cli_line_reaches_prefect_with_every_argument_unchanged(
    home: dict[str, str],
) -> None:
    ok(home, "webhook", "create", "orders feed", "-d", DESCRIPTION, "-t", NASTY)
    line = ok(home, "webhook", "export", "orders feed", "--format", "prefect-cli").rstrip("\n")
    expected = ["cloud", "webhook", "create", "orders feed", "--description", DESCRIPTION]
    expected += ["--template", NASTY]
    assert line.startswith("prefect cloud webhook create ")
    assert shlex.split(line)[1:] == expected
    # A real POSIX shell, with `prefect` a function that prints what it was given.
    script = 'prefect() { printf "%s\\0" "$@"; }\n' + line
    shown = subprocess.run(["sh", "-c", script], capture_output=True, check=True).stdout
    assert shown.decode().split("\0")[:-1] == expected


def test_json_export_is_the_body_that_creates_the_webhook(home: dict[str, str], cloud: str) -> None:
    ok(home, "webhook", "create", "orders", "-d", DESCRIPTION, "-t", NASTY)
    text = ok(home, "webhook", "export", "orders", "--format", "json")
    exported = json.loads(text)
    assert exported == {"name": "orders", "description": DESCRIPTION, "enabled": True,
                        "template": NASTY}  # fmt: skip
    # posted as it is to a Prefect-Cloud-shaped API, it creates the same webhook there
    request = urllib.request.Request(
        f"{cloud}/api/webhooks/",
        data=text.encode(),
        headers={"Authorization": f"Bearer {CLOUD_KEY}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        assert answer.status == 201
    [remote] = cloud_hooks(cloud)
    assert {key: remote[key] for key in exported} == exported


@pytest.mark.skipif(shutil.which("terraform") is None, reason="terraform is not installed")
def test_terraform_reads_the_block_back_as_the_same_strings(
    home: dict[str, str], tmp_path: Path
) -> None:
    ok(home, "webhook", "create", "2024 Orders (v2)", "-d", DESCRIPTION, "-t", NASTY)
    hook = local_hooks(home)[0]
    ok(home, "webhook", "toggle", str(hook["id"]))
    block = ok(home, "webhook", "export", str(hook["id"]), "--format", "terraform")
    header, *body = block.strip().splitlines()
    assert re.fullmatch(r'resource "prefect_webhook" "[A-Za-z_][A-Za-z0-9_-]*" \{', header)
    assert [line.split("=")[0].strip() for line in body[:4]] == [
        "name", "description", "enabled", "template",
    ]  # fmt: skip
    # the template reads as written, a line of the block for each of its lines
    assert (
        body[3].endswith("= chomp(<<EOT")
        and body[4:7] == NASTY.replace("${", "$${").replace("%{", "%%{").splitlines()
    )
    # Terraform itself evaluates the block's values (as locals: the provider is not needed).
    (tmp_path / "tf").mkdir()
    (tmp_path / "tf" / "main.tf").write_text("locals {\n" + "\n".join(body) + "\n")
    shown = subprocess.run(
        ["terraform", "console"],
        input="jsonencode([local.name, local.description, local.enabled, local.template])\n",
        capture_output=True,
        text=True,
        cwd=tmp_path / "tf",
        timeout=120,
        check=True,
    ).stdout
    assert json.loads(json.loads(shown.strip().splitlines()[-1])) == [
        "2024 Orders (v2)", DESCRIPTION, False, NASTY,
    ]  # fmt: skip


def test_terraform_names_the_service_account_where_one_is_set(home: dict[str, str]) -> None:
    account = json.loads(ok(home, "service-account", "create", "ci", "-o", "json"))
    ok(home, "webhook", "create", "orders", "-t", NASTY, "--service-account", account["id"])
    block = ok(home, "webhook", "export", "orders", "--format", "terraform")
    assert f'service_account_id = "{account["id"]}"' in block


# Push and pull, against a second hooklab serve as the Cloud-shaped API


def test_push_creates_then_updates_the_same_remote_webhook_and_prints_its_url(
    home: dict[str, str], cloud: str
) -> None:
    ok(home, "webhook", "create", "orders", "-d", "v1", "-t", NASTY)
    first = ok(home, "webhook", "push", "orders", "--to", cloud, "--api-key", CLOUD_KEY)
    message, url = first.splitlines()
    assert message == "Successfully created webhook orders"
    [remote] = cloud_hooks(cloud)
    assert url == f"{cloud}/hooks/{remote['slug']}"
    assert (remote["description"], remote["template"], remote["enabled"]) == ("v1", NASTY, True)
    # The printed URL is the remote webhook's: a request there makes its event.
    post = urllib.request.Request(url, data=b'{"kind": "paid", "id": 7}', method="POST")
    post.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(post, timeout=10) as answer:
        assert answer.status == 204

    ok(home, "webhook", "update", "orders", "-d", "v2")
    ok(home, "webhook", "toggle", "orders")
    env = {**home, "PREFECT_API_KEY": CLOUD_KEY}  # the key as Prefect's client takes it
    second = ok(env, "webhook", "push", "orders", "--to", cloud)
    assert second.splitlines() == [f"Successfully updated webhook {remote['id']}", url]
    [after] = cloud_hooks(cloud)
    assert (after["id"], after["description"], after["enabled"]) == (remote["id"], "v2", False)


def test_push_refuses_a_name_two_remote_webhooks_share(home: dict[str, str], cloud: str) -> None:
    remote_env = base_env(HOOKLAB_API_URL=cloud, HOOKLAB_API_KEY=CLOUD_KEY)
    for _ in range(2):
        ok(remote_env, "webhook", "create", "orders", "-t", NASTY)
    ok(home, "webhook", "create", "orders", "-t", NASTY)
    result = run_cli(home, "webhook", "push", "orders", "--to", cloud, "--api-key", CLOUD_KEY)
    assert result.returncode == 1
    ids = sorted(str(hook["id"]) for hook in cloud_hooks(cloud))
    assert "ambiguous" in result.stderr and all(one in result.stderr for one in ids)
    assert len(result.stderr.strip().splitlines()) == 1
    assert len(cloud_hooks(cloud)) == 2


def test_pull_updates_same_named_webhooks_and_creates_the_rest(
    home: dict[str, str], cloud: str
) -> None:
    remote_env = base_env(HOOKLAB_API_URL=cloud, HOOKLAB_API_KEY=CLOUD_KEY)
    ok(remote_env, "webhook", "create", "orders", "-d", "from cloud", "-t", NASTY)
    ok(remote_env, "webhook", "create", "refunds", "-d", "off", "-t", '{"event": "refund"}')
    ok(remote_env, "webhook", "toggle", "refunds")
    ok(home, "webhook", "create", "orders", "-d", "local draft", "-t", '{"event": "old"}')
    [before] = local_hooks(home)

    shown = ok(home, "webhook", "pull", "--from", cloud, "--api-key", CLOUD_KEY)
    assert shown.splitlines() == [
        f"Successfully updated webhook {before['id']}",
        "Successfully created webhook refunds",
    ]
    pulled = {hook["name"]: hook for hook in local_hooks(home)}
    assert set(pulled) == {"orders", "refunds"}
    assert pulled["orders"]["id"] == before["id"] and pulled["orders"]["slug"] == before["slug"]
    assert (pulled["orders"]["description"], pulled["orders"]["template"]) == ("from cloud", NASTY)
    assert pulled["orders"]["enabled"] is True and pulled["refunds"]["enabled"] is False
    # Pulling again changes nothing and duplicates nothing.
    ok(home, "webhook", "pull", "--from", cloud, "--api-key", CLOUD_KEY)
    assert len(local_hooks(home)) == 2


# Bad input: one line each, exit 1


@pytest.mark.parametrize("command", ["push", "pull"])
def test_unreachable_wrong_key_and_not_an_api_give_one_line(
    home: dict[str, str], cloud: str, command: str
) -> None:
    ok(home, "webhook", "create", "orders", "-t", NASTY)

    def run(url: str, key: str) -> tuple[int, str]:
        where = ["push", "orders", "--to", url] if command == "push" else ["pull", "--from", url]
        result = run_cli(home, "webhook", *where, "--api-key", key)
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert "Traceback" not in result.stderr
        return result.returncode, result.stderr

    closed = f"http://127.0.0.1:{free_port()}/api"
    status, line = run(closed, CLOUD_KEY)
    assert status == 1 and f"Cannot reach the webhook API at {closed}" in line
    status, line = run(cloud, "wrong-key")
    assert status == 1 and "refused the API key (401)" in line and "wrong-key" not in line
    status, line = run(f"{cloud}/hooks", CLOUD_KEY)
    assert status == 1 and "does not look like a Prefect Cloud webhook API" in line
    assert len(local_hooks(home)) == 1 and cloud_hooks(cloud) == []


def test_push_without_a_key_is_a_usage_error(home: dict[str, str]) -> None:
    ok(home, "webhook", "create", "orders", "-t", NASTY)
    env = {k: v for k, v in home.items() if k != "PREFECT_API_KEY"}
    result = run_cli(env, "webhook", "push", "orders", "--to", "http://127.0.0.1:1/api")
    assert result.returncode == 2 and "PREFECT_API_KEY" in result.stderr
