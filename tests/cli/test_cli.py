"""The `hooklab` command, run as a real process: Prefect's webhook commands and messages, locally
and against a running `hooklab serve`; service accounts, enforcement, serve and admin-key."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from cli_support import (
    TEMPLATE,
    Run,
    base_env,
    hooklab_server,
    run_cli,
    run_with_terminal_stdin,
    served_url,
    untimed,
)

from hooklab.cli.app import build_parser

ADMIN_KEY = "hlak_test-admin-key"
MISSING_TEMPLATE = (
    "Please provide a Jinja2 template expression in the --template flag \n"
    "which should define (at minimum) the following attributes: \n"
    '{ "event": "your.event.name", "resource": { "prefect.resource.id": "your.resource.id" } } \n'
    "https://docs.prefect.io/latest/automate/events/webhook-triggers#webhook-templates\n"
)
API_KEYS = {
    "id", "created", "updated", "name", "description", "enabled", "template", "slug",
    "service_account_id", "account", "workspace",
}  # fmt: skip
UNKNOWN_ID = "1c8a3e36-52c7-4b7a-9d4e-6a0f1f5f2b11"
Completed = subprocess.CompletedProcess[str]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    """A real `python -m hooklab.server` on a free loopback port; yields its base URL."""
    with hooklab_server(tmp_path / "server", ADMIN_KEY) as base:
        yield base


@pytest.fixture(params=["local", "remote"])
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def env(mode: str, tmp_path: Path, request: pytest.FixtureRequest) -> dict[str, str]:
    """The environment of a CLI working on the local home, or on a running server's API."""
    if mode == "local":
        return base_env(HOOKLAB_HOME=str(tmp_path / "home"))
    url = request.getfixturevalue("server")
    return base_env(
        HOOKLAB_HOME=str(tmp_path / "unused-home"),
        HOOKLAB_API_URL=url,
        HOOKLAB_API_KEY=ADMIN_KEY,
    )


@pytest.fixture
def cli(env: dict[str, str]) -> Run:
    return lambda *args, input="": run_cli(env, *args, input=input)


def create(cli: Run, name: str = "models", *extra: str) -> dict[str, object]:
    result = cli("webhook", "create", name, "-t", TEMPLATE, *extra)
    assert result.returncode == 0, result.stderr
    hooks = json.loads(cli("webhook", "ls", "-o", "json").stdout)
    return next(hook for hook in reversed(hooks) if hook["name"] == name)


# hooklab webhook: the words and exit codes of `prefect cloud webhook`


def test_create_without_template_prints_prefects_hint_and_exits_1(cli: Run) -> None:
    result = cli("webhook", "create", "models")
    assert result.returncode == 1
    assert result.stderr == MISSING_TEMPLATE
    assert json.loads(cli("webhook", "ls", "-o", "json").stdout) == []


def test_create_then_ls_shows_the_webhook_in_the_api_shape(cli: Run) -> None:
    result = cli("webhook", "create", "models", "-d", "Model updates", "--template", TEMPLATE)
    assert (result.returncode, result.stdout) == (0, "Successfully created webhook models\n")
    [hook] = json.loads(cli("webhook", "ls", "-o", "json").stdout)
    assert set(hook) == API_KEYS
    assert hook["name"] == "models"
    assert hook["description"] == "Model updates"
    assert hook["template"] == TEMPLATE
    assert hook["enabled"] is True
    assert len(hook["slug"]) == 22


def test_ls_and_get_print_prefects_columns(cli: Run) -> None:
    hook = create(cli)
    for args in (["webhook", "ls"], ["webhook", "get", str(hook["id"])]):
        result = cli(*args)
        assert result.returncode == 0
        header, rule, first, *_ = result.stdout.splitlines()
        assert header.split("  ")[0] == "webhook id"
        columns = [c.strip() for c in header.split("  ") if c.strip()]
        assert columns == ["webhook id", "url slug", "name", "enabled?", "template"]
        assert set(rule) == {"-", " "}
        assert first.split()[:4] == [hook["id"], hook["slug"], "models", "True"]
        assert "product.models.{{ body.model }}" in result.stdout


def test_get_json_is_the_webhook_object(cli: Run) -> None:
    hook = create(cli)
    assert json.loads(cli("webhook", "get", str(hook["id"]), "-o", "json").stdout) == hook


def test_template_can_be_read_from_a_file(cli: Run, tmp_path: Path) -> None:
    path = tmp_path / "template.j2"
    path.write_text("{\n  " + TEMPLATE[1:])
    assert cli("webhook", "create", "from-file", "-t", f"@{path}").returncode == 0
    [hook] = json.loads(cli("webhook", "ls", "-o", "json").stdout)
    assert hook["template"] == path.read_text()


def test_an_invalid_template_is_refused_with_its_line(cli: Run) -> None:
    result = cli("webhook", "create", "broken", "-t", '{"event": "x",\n "resource": {{ body }')
    assert result.returncode == 1
    assert result.stderr.startswith("Invalid template: line 2: ")
    assert len(result.stderr.splitlines()) == 1


def test_toggle_flips_and_says_so(cli: Run) -> None:
    hook_id = str(create(cli)["id"])
    assert cli("webhook", "toggle", hook_id).stdout == "Webhook is now disabled\n"
    assert json.loads(cli("webhook", "get", hook_id, "-o", "json").stdout)["enabled"] is False
    assert cli("webhook", "toggle", hook_id).stdout == "Webhook is now enabled\n"
    assert json.loads(cli("webhook", "get", hook_id, "-o", "json").stdout)["enabled"] is True


def test_rotate_asks_then_gives_a_new_slug(cli: Run) -> None:
    hook = create(cli)
    result = cli("webhook", "rotate", str(hook["id"]), input="y\n")
    assert result.returncode == 0
    assert "Are you sure you want to rotate? This will invalidate the old URL." in result.stderr
    after = json.loads(cli("webhook", "get", str(hook["id"]), "-o", "json").stdout)
    assert result.stdout == f"Successfully rotated webhook URL to {after['slug']}\n"
    assert after["slug"] != hook["slug"]


@pytest.mark.parametrize("answer", ["n\n", "no\n", ""])
def test_rotate_declined_or_unanswered_changes_nothing(cli: Run, answer: str) -> None:
    hook = create(cli)
    result = cli("webhook", "rotate", str(hook["id"]), input=answer)
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr.endswith("Rotation aborted.\n")
    assert json.loads(cli("webhook", "get", str(hook["id"]), "-o", "json").stdout) == hook


def test_rotate_asks_again_after_an_unclear_answer(cli: Run) -> None:
    hook = create(cli)
    result = cli("webhook", "rotate", str(hook["id"]), input="maybe\ny\n")
    assert result.returncode == 0
    assert "Please enter Y or N" in result.stderr


def test_update_changes_only_what_is_given(cli: Run) -> None:
    hook = create(cli, "models", "-d", "first")
    hook_id = str(hook["id"])
    result = cli("webhook", "update", hook_id, "--name", "renamed")
    assert (result.returncode, result.stdout) == (0, f"Successfully updated webhook {hook_id}\n")
    after = json.loads(cli("webhook", "get", hook_id, "-o", "json").stdout)
    assert (after["name"], after["description"], after["template"]) == (
        "renamed",
        "first",
        TEMPLATE,
    )
    new_template = TEMPLATE.replace("model-update", "model-changed")
    assert cli("webhook", "update", hook_id, "-d", "second", "-t", new_template).returncode == 0
    after = json.loads(cli("webhook", "get", hook_id, "-o", "json").stdout)
    assert (after["name"], after["description"], after["template"]) == (
        "renamed", "second", new_template,
    )  # fmt: skip
    assert after["slug"] == hook["slug"]
    # Unlike Prefect's CLI, an empty description is a value, not "keep the old one".
    assert cli("webhook", "update", hook_id, "-d", "").returncode == 0
    assert json.loads(cli("webhook", "get", hook_id, "-o", "json").stdout)["description"] == ""


def test_delete_from_a_script_proceeds_without_asking(cli: Run) -> None:
    hook_id = str(create(cli)["id"])
    result = cli("webhook", "delete", hook_id)
    assert (result.returncode, result.stdout) == (0, f"Successfully deleted webhook {hook_id}\n")
    assert "Are you sure" not in result.stderr
    assert json.loads(cli("webhook", "ls", "-o", "json").stdout) == []


def test_delete_at_a_terminal_asks_and_no_is_the_default(cli: Run, env: dict[str, str]) -> None:
    hook_id = str(create(cli)["id"])
    status, out, err = run_with_terminal_stdin(env, "webhook", "delete", hook_id, answer="\n")
    assert (status, out) == (1, "")
    assert f"Are you sure you want to delete webhook with id '{hook_id}'? [y/n] (n)" in err
    assert err.endswith("Deletion aborted.\n")
    assert cli("webhook", "get", hook_id).returncode == 0

    status, out, err = run_with_terminal_stdin(env, "webhook", "delete", hook_id, answer="y\n")
    assert (status, out) == (0, f"Successfully deleted webhook {hook_id}\n")
    assert cli("webhook", "get", hook_id).returncode == 1


@pytest.mark.parametrize(
    "command", [["get"], ["toggle"], ["update", "-n", "x"], ["delete"], ["rotate"]]
)
def test_an_unknown_id_exits_1_with_prefects_message(cli: Run, command: list[str]) -> None:
    result = cli("webhook", command[0], UNKNOWN_ID, *command[1:], input="y\n")
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr.splitlines()[-1] == f"Webhook with id '{UNKNOWN_ID}' not found."


@pytest.mark.parametrize("command", ["get", "toggle", "update", "delete", "rotate"])
def test_a_name_no_webhook_has_is_not_found_and_an_empty_one_is_a_bad_argument(
    cli: Run, command: str
) -> None:
    unknown = cli("webhook", command, "models", input="y\n")
    assert (unknown.returncode, unknown.stdout) == (1, "")
    assert unknown.stderr.splitlines()[-1] == "Webhook 'models' not found."
    empty = cli("webhook", command, " ")
    assert (empty.returncode, empty.stdout) == (2, "")
    [line] = empty.stderr.splitlines()
    assert line.startswith(f"hooklab webhook {command}: error: argument WEBHOOK_ID: a webhook id")
    assert f"'hooklab webhook {command} --help'" in line


def test_ids_are_accepted_in_any_uuid_spelling(cli: Run) -> None:
    hook = create(cli)
    shouting = str(hook["id"]).upper()
    assert json.loads(cli("webhook", "get", shouting, "-o", "json").stdout)["id"] == hook["id"]


# Remote mode specifics


@pytest.mark.parametrize("mode", ["remote"])
def test_remote_mode_leaves_the_local_home_alone(cli: Run, env: dict[str, str]) -> None:
    create(cli)
    assert not Path(env["HOOKLAB_HOME"]).exists()


@pytest.mark.parametrize("mode", ["remote"])
def test_a_wrong_api_key_is_refused(env: dict[str, str]) -> None:
    result = run_cli(env, "webhook", "ls", "--api-key", "wrong")
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr.startswith("Unauthorized: ")


def test_an_unreachable_api_is_one_line(tmp_path: Path) -> None:
    env = base_env(HOOKLAB_HOME=str(tmp_path))
    result = run_cli(env, "webhook", "ls", "--api-url", "http://127.0.0.1:9", "--api-key", "k")
    assert result.returncode == 1
    [line] = result.stderr.splitlines()
    assert line.startswith("Cannot reach the hooklab API at http://127.0.0.1:9/api")


def test_an_api_url_without_a_key_is_a_bad_argument(tmp_path: Path) -> None:
    env = base_env(HOOKLAB_HOME=str(tmp_path), HOOKLAB_API_URL="http://127.0.0.1:9")
    result = run_cli(env, "webhook", "ls")
    assert result.returncode == 2
    assert "--api-key" in result.stderr


# Service accounts and enforcement


def test_service_account_lifecycle(cli: Run, env: dict[str, str]) -> None:
    result = cli("service-account", "create", "github-sender")
    assert result.returncode == 0
    lines = result.stdout.splitlines()
    assert lines[0] == "Successfully created service account github-sender"
    account_id = lines[1].removeprefix("id: ")
    key = lines[2].removeprefix("API key: ")
    assert key.startswith("hlsa_")

    [account] = json.loads(cli("service-account", "ls", "-o", "json").stdout)
    assert (account["id"], account["name"]) == (account_id, "github-sender")
    assert "api_key" not in account and key not in cli("service-account", "ls").stdout

    hook = create(cli, "guarded", "--service-account", account_id)
    assert hook["service_account_id"] == account_id

    status, _, err = run_with_terminal_stdin(
        env, "service-account", "delete", account_id, answer="n\n"
    )
    assert status == 1 and err.endswith("Deletion aborted.\n")
    result = cli("service-account", "delete", account_id)
    assert result.stdout == f"Successfully deleted service account {account_id}\n"
    # As in Prefect, the account's webhooks go with it.
    assert json.loads(cli("webhook", "ls", "-o", "json").stdout) == []
    result = cli("service-account", "delete", account_id)
    assert result.returncode == 1
    assert result.stderr == f"Service account with id '{account_id}' not found.\n"


def test_enforcement_disables_webhooks_without_an_account(cli: Run) -> None:
    hook_id = str(create(cli)["id"])
    assert cli("enforce").stdout == "Service account enforcement is off\n"
    result = cli("enforce", "on")
    assert result.stdout == (
        "Service account enforcement is now on: 1 webhook without a service account disabled\n"
    )
    assert json.loads(cli("webhook", "get", hook_id, "-o", "json").stdout)["enabled"] is False
    refused = cli("webhook", "toggle", hook_id)
    assert refused.returncode == 1
    assert "service account" in refused.stderr
    assert cli("webhook", "create", "another", "-t", TEMPLATE).returncode == 1
    assert cli("enforce").stdout == "Service account enforcement is on\n"
    assert cli("enforce", "off").stdout == "Service account enforcement is now off\n"
    assert cli("webhook", "toggle", hook_id).stdout == "Webhook is now enabled\n"


# serve and admin-key


def test_admin_key_is_made_once_and_kept_private(tmp_path: Path) -> None:
    env = base_env(HOOKLAB_HOME=str(tmp_path / "home"))
    first = run_cli(env, "admin-key")
    assert first.returncode == 0
    key = first.stdout.strip()
    assert key and run_cli(env, "admin-key").stdout.strip() == key
    [kept] = [p for p in (tmp_path / "home").iterdir() if key in p.read_text()]
    assert kept.stat().st_mode & 0o077 == 0
    assert run_cli({**env, "HOOKLAB_ADMIN_KEY": "from-env"}, "admin-key").stdout == "from-env\n"


def test_serve_runs_the_server_that_the_cli_then_manages(tmp_path: Path) -> None:
    env = base_env(HOOKLAB_HOME=str(tmp_path / "home"))
    process = subprocess.Popen(
        [sys.executable, "-m", "hooklab", "serve", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert process.stdout is not None
        url = served_url(process.stdout.readline())
        assert url.startswith("http://127.0.0.1:")
        key = run_cli(env, "admin-key").stdout.strip()
        remote = {**env, "HOOKLAB_API_URL": url, "HOOKLAB_API_KEY": key}
        assert run_cli(remote, "webhook", "create", "served", "-t", TEMPLATE).returncode == 0
        # The server stores into the same home the local commands read.
        local = json.loads(run_cli(env, "webhook", "ls", "-o", "json").stdout)
        assert [hook["name"] for hook in local] == ["served"]
    finally:
        process.send_signal(signal.SIGINT)
        out, _ = process.communicate(timeout=30)
    assert process.returncode == 0
    assert "hooklab stopped" in out


def test_serve_takes_every_option_of_the_server_and_passes_it_on(tmp_path: Path) -> None:
    env = base_env(HOOKLAB_HOME=str(tmp_path / "home"))
    server_help = subprocess.run(
        [sys.executable, "-m", "hooklab.server", "--help"],
        capture_output=True, text=True, env=env, timeout=60, check=True,
    ).stdout  # fmt: skip
    cli_help = run_cli(env, "serve", "--help").stdout
    assert set(re.findall(r"--[a-z][a-z-]+", server_help)) <= set(
        re.findall(r"--[a-z][a-z-]+", cli_help)
    )
    refused = run_cli(env, "serve", "--port", "0", "--idle-timeout", "nan")
    assert refused.returncode == 2
    assert refused.stderr.strip() == "hooklab: --idle-timeout must be a positive number of seconds"
    process = subprocess.Popen(
        [sys.executable, "-m", "hooklab", "serve", "--port", "0", "--idle-timeout", "30",
         "--forward-to", "http://127.0.0.1:9/api"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        said = [process.stdout.readline() for _ in range(4)]  # serving, API, no webhooks
        assert untimed(said[-1])[0].strip() == "forwarding events to http://127.0.0.1:9/api"
    finally:
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=30)
    assert process.returncode == 0


# Arguments and help


def all_commands() -> list[list[str]]:
    """Every leaf command of the real parser, as the words that name it."""
    found: list[list[str]] = []
    seen: set[int] = set()

    def walk(parser: object, words: list[str]) -> None:
        actions = getattr(parser, "_subparsers", None)
        if actions is None:
            found.append(words)
            return
        for action in actions._group_actions:
            for name, child in action.choices.items():
                if id(child) not in seen:  # an alias names a parser already walked
                    seen.add(id(child))
                    walk(child, [*words, name])

    walk(build_parser(), [])
    return found


def test_every_command_is_listed() -> None:
    names = {" ".join(words) for words in all_commands()}
    assert {
        "webhook ls", "webhook get", "webhook create", "webhook update", "webhook toggle",
        "webhook rotate", "webhook delete", "service-account create", "service-account ls",
        "service-account delete", "enforce", "events", "requests", "replay", "render", "serve",
        "admin-key",
    } <= names  # fmt: skip


def run_all(
    env: dict[str, str], commands: list[list[str]]
) -> list[subprocess.CompletedProcess[str]]:
    """Run many short CLI processes at once; each is still the real entry point."""
    with ThreadPoolExecutor(max_workers=8) as pool:
        return list(pool.map(lambda args: run_cli(env, *args), commands))


def test_every_command_has_help_with_an_example(tmp_path: Path) -> None:
    commands = all_commands()
    results = run_all(base_env(HOOKLAB_HOME=str(tmp_path)), [[*w, "--help"] for w in commands])
    for words, result in zip(commands, results, strict=True):
        assert result.returncode == 0, words
        example = result.stdout.split("example:\n", 1)[1]
        assert example.lstrip().startswith(("hooklab " + " ".join(words), "curl ")), words


def test_a_bad_argument_is_one_line_and_exit_2(tmp_path: Path) -> None:
    bad = [
        ["webhook", "frobnicate"],
        ["webhook", "ls", "--colour"],
        ["webhook", "ls", "-o", "yaml"],
        ["events", "--since", "last tuesday"],
        ["events", "--limit", "-1"],
        ["events", "--api-url", "http://127.0.0.1:9"],
        ["--api-url", "http://127.0.0.1:9", "events"],
        ["webhook", "ls", "--api-url", "localhost:8765", "--api-key", "k"],
        ["enforce", "maybe"],
        ["render", "--template", "missing.j2", "--request", "missing.json"],
        ["serve", "--port", "eighty"],
        ["webhook"],
        [],
    ]
    for args, result in zip(bad, run_all(base_env(HOOKLAB_HOME=str(tmp_path)), bad), strict=True):
        assert (result.returncode, result.stdout) == (2, ""), args
        [line] = result.stderr.splitlines()
        assert line.startswith("hooklab") and ": error: " in line and "--help" in line, args


def test_options_may_come_before_the_command(tmp_path: Path) -> None:
    env = base_env()
    home = str(tmp_path / "elsewhere")
    assert run_cli(env, "--home", home, "webhook", "create", "x", "-t", TEMPLATE).returncode == 0
    [hook] = json.loads(run_cli(env, "webhook", "ls", "--home", home, "-o", "json").stdout)
    assert hook["name"] == "x"
    assert (tmp_path / "elsewhere" / "hooklab.db").exists()


def test_webhooks_is_an_alias_as_in_prefect(tmp_path: Path) -> None:
    result = run_cli(base_env(HOOKLAB_HOME=str(tmp_path)), "webhooks", "ls", "-o", "json")
    assert (result.returncode, result.stdout) == (0, "[]\n")


def test_python_dash_m_and_the_console_script_agree(tmp_path: Path) -> None:
    script = Path(sys.executable).with_name("hooklab")
    if not script.exists():
        pytest.skip("the hooklab console script is not installed beside this python")
    env = base_env(HOOKLAB_HOME=str(tmp_path))
    result = subprocess.run(
        [str(script), "webhook", "get", str(uuid.UUID(int=1))],
        capture_output=True, text=True, env=env, timeout=60,
    )  # fmt: skip
    assert result.returncode == 1
    assert result.stderr == f"Webhook with id '{uuid.UUID(int=1)}' not found.\n"


def test_a_name_that_one_webhook_has_works_where_an_id_does(cli: Run) -> None:
    hook = create(cli, "models")
    got = json.loads(cli("webhook", "get", "models", "-o", "json").stdout)
    assert got["id"] == hook["id"]
    updated = cli("webhook", "update", "models", "--description", "v2")
    assert updated.stdout == f"Successfully updated webhook {hook['id']}\n"
    assert cli("webhook", "toggle", "models").stdout == "Webhook is now disabled\n"
    assert cli("webhook", "rotate", "models", input="y\n").returncode == 0
    assert (
        cli("webhook", "delete", "models").stdout == f"Successfully deleted webhook {hook['id']}\n"
    )
    gone = cli("webhook", "get", "models")
    assert (gone.returncode, gone.stderr) == (1, "Webhook 'models' not found.\n")


def test_a_name_two_webhooks_share_is_refused_with_their_ids(cli: Run) -> None:
    first, second = create(cli, "twins"), create(cli, "twins")
    for command in (["get"], ["update", "-d", "x"], ["toggle"], ["delete"]):
        result = cli("webhook", *command[:1], "twins", *command[1:])
        assert result.returncode == 1, command
        assert result.stderr == (
            f"Webhook name 'twins' is ambiguous: 2 webhooks have it "
            f"({first['id']}, {second['id']}); use an id.\n"
        )
    assert len(json.loads(cli("webhook", "ls", "-o", "json").stdout)) == 2  # nothing changed


def test_create_and_update_warn_as_the_notebook_does_and_still_succeed(cli: Run) -> None:
    repr_body = '{"event": "e", "resource": {"prefect.resource.id": "r"}, "payload": {{ body }}}'
    created = cli("webhook", "create", "loose", "-t", repr_body)
    assert (created.returncode, created.stdout) == (0, "Successfully created webhook loose\n")
    [warning] = created.stderr.splitlines()
    assert warning.startswith("warning: line 1:") and "{{ body }}" in warning
    updated = cli("webhook", "update", "loose", "-t", TEMPLATE)
    # Prefect's own pattern, text inside quotes: a note with the fix, not a warning
    assert updated.returncode == 0
    [note] = updated.stderr.splitlines()
    assert note.startswith('note: line 1: "product.models.{{ body.model }}" writes body.model')
