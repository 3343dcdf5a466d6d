"""The magics in a real IPython shell: %load_ext, %%webhook, the %hooklab subcommands, %config."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell
from pg_support import PostgresCluster

import hooklab
from hooklab.core.examples import DYNAMIC_TEMPLATE as SEED
from hooklab.core.request import HookRequest
from hooklab.notebook.deterministic import NOTICE
from hooklab.notebook.magics import HooklabMagics
from hooklab.notebook.webhookview import curl_command


@pytest.fixture
def shell(tmp_path: Path) -> Iterator[InteractiveShell]:
    ip = InteractiveShell.instance()
    ip.run_line_magic("load_ext", "hooklab")
    ip.run_line_magic("config", f"HooklabMagics.home = {str(tmp_path)!r}")
    yield ip
    ip.run_line_magic("unload_ext", "hooklab")
    for magics in list(ip.configurables):
        if isinstance(magics, HooklabMagics):
            magics._new_workspace(None)
            ip.configurables.remove(magics)
    InteractiveShell.clear_instance()


def magics_of(ip: InteractiveShell) -> HooklabMagics:
    return next(m for m in ip.configurables if isinstance(m, HooklabMagics))


def test_load_ext_starts_nothing(shell: InteractiveShell, tmp_path: Path) -> None:
    magics = magics_of(shell)
    assert magics.session.receiver is None and magics.session._workspace is None
    assert not (tmp_path / "hooklab.db").exists()


def test_webhook_cell_creates_then_updates_and_keeps_the_slug(
    shell: InteractiveShell, capsys: pytest.CaptureFixture[str]
) -> None:
    shell.run_cell_magic("webhook", "models --description 'Model updates'", SEED)
    out = capsys.readouterr().out
    # No loop runs in a terminal shell, so the receiver waits; the webhook exists all the same.
    assert "receiver not started" in out
    first = magics_of(shell).workspace.get_webhook("models")
    assert first.description == "Model updates" and first.template == SEED.rstrip("\n")

    shell.run_cell_magic("webhook", "models", SEED.replace("model-update", "model-changed"))
    second = magics_of(shell).workspace.get_webhook("models")
    assert second.slug == first.slug and "model-changed" in second.template
    assert second.description == "Model updates"


def test_webhook_cell_with_a_broken_template_says_where(shell: InteractiveShell) -> None:
    with pytest.raises(UsageError, match=r"'broken' not saved: line 2: Template syntax error"):
        shell.run_cell_magic("webhook", "broken", '{\n"event": "{{ body.x "\n}')


def test_subcommands_manage_webhooks(
    shell: InteractiveShell, capsys: pytest.CaptureFixture[str]
) -> None:
    shell.run_cell_magic("webhook", "models", SEED)
    listing = shell.run_line_magic("hooklab", "ls")
    assert isinstance(listing, pd.DataFrame) and listing["name"].tolist() == ["models"]
    hook = shell.run_line_magic("hooklab", "get models")
    assert isinstance(hook, hooklab.Webhook) and hook.name == "models"

    shell.run_line_magic("hooklab", "toggle models")
    assert "is now disabled" in capsys.readouterr().out
    assert not magics_of(shell).workspace.get_webhook("models").enabled

    new_path = shell.run_line_magic("hooklab", "rotate models")
    assert new_path != hook.path and new_path.startswith("/hooks/")

    shell.run_line_magic("hooklab", "delete models")
    assert shell.run_line_magic("hooklab", "ls").empty
    with pytest.raises(UsageError, match="not found"):
        shell.run_line_magic("hooklab", "get models")


def test_history_subcommands_return_frames_filtered(shell: InteractiveShell) -> None:
    shell.run_cell_magic("webhook", "models", SEED)
    shell.run_cell_magic("webhook", "other", SEED.replace("model-update", "other-update"))
    ws = magics_of(shell).workspace
    models, other = ws.get_webhook("models"), ws.get_webhook("other")
    ws.receive(models.slug, HookRequest.fake(method="POST", form={"model": "a"}))
    ws.receive(other.slug, HookRequest.fake(method="POST", form={"model": "b"}))
    bad = HookRequest.fake(method="POST", headers={"Content-Type": "application/json"}, body="{")
    ws.receive(models.slug, bad)

    everything = shell.run_line_magic("hooklab", "events")
    assert len(everything) == 3
    assert shell.run_line_magic("hooklab", "events models")["webhook_name"].unique().tolist() == [
        "models"
    ]
    named = shell.run_line_magic("hooklab", "events --event other-update")
    assert named["resource.id"].tolist() == ["product.models.b"]
    assert shell.run_line_magic("hooklab", "events --since 1d").shape[0] == 3
    assert shell.run_line_magic("hooklab", "events --until 2000-01-01").empty
    failed = shell.run_line_magic("hooklab", "failures models")
    assert len(failed) == 1 and failed["failed"].all()
    assert list(failed.columns[:3]) == ["error", "webhook_name", "received"]  # why, first
    assert failed["error"].iloc[0].startswith("Invalid JSON body")
    assert set(failed.columns) == set(ws.events("models", failed=True).columns)  # none dropped
    requests = shell.run_line_magic("hooklab", "requests other")
    assert requests["body"].tolist() == ["model=b"]
    by_event = shell.run_line_magic("hooklab", "requests --event model-update")
    assert by_event["body"].tolist() == ["model=a"]
    assert shell.run_line_magic("hooklab", "requests --failed")["body"].tolist() == ["{"]
    with pytest.raises(UsageError, match="not a time"):
        shell.run_line_magic("hooklab", "events --since yesterday")
    latest = shell.run_line_magic("hooklab", "events --limit 2")
    assert latest["webhook_name"].tolist() == ["other", "models"]  # the two most recent
    assert shell.run_line_magic("hooklab", "requests models --limit 1")["body"].tolist() == ["{"]


def test_replay_subcommand_uses_a_template_variable(shell: InteractiveShell) -> None:
    shell.run_cell_magic("webhook", "models", SEED)
    ws = magics_of(shell).workspace
    ws.receive(ws.get_webhook("models").slug, HookRequest.fake(method="POST", form={"model": "a"}))
    shell.user_ns["draft"] = SEED.replace("product.models.", "models.")
    result = shell.run_line_magic("hooklab", "replay models --template draft")
    assert result.events["resource.id"].tolist() == ["models.a"]
    assert len(ws.events()) == 1  # history untouched
    ws.receive(ws.get_webhook("models").slug, HookRequest.fake(method="POST", form={"model": "b"}))
    latest = shell.run_line_magic("hooklab", "replay models --template draft --limit 1")
    assert latest.events["resource.id"].tolist() == ["models.b"]
    assert shell.run_line_magic("hooklab", "replay models --until 2000-01-01").events.empty
    spread = shell.run_line_magic("hooklab", "replay models --template draft --processes 2")
    assert spread.events["resource.id"].tolist() == ["models.a", "models.b"]
    with pytest.raises(UsageError, match=r"a saved replay, .* runs in one process"):
        shell.run_line_magic("hooklab", "replay models --save --processes 2")


def test_unknown_subcommand_lists_the_others(shell: InteractiveShell) -> None:
    with pytest.raises(UsageError, match="unknown subcommand 'lsx'") as raised:
        shell.run_line_magic("hooklab", "lsx")
    assert "replay" in str(raised.value) and "failures" in str(raised.value)
    listed = repr(shell.run_line_magic("hooklab", "help"))
    assert "events [NAME]" in listed
    assert "captured requests, replayed." in listed  # a summary over two lines, whole


def test_config_goes_through_traitlets(
    shell: InteractiveShell, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shell.run_line_magic("config", "HooklabMagics.deterministic = True")
    # switched on, it says what it is, where it is switched on (a copied cell included)
    assert capsys.readouterr().out == NOTICE + "\n"
    assert "2024-01-01 00:00:00 UTC" in NOTICE and "not" not in NOTICE.split(";")[0]
    shell.run_cell_magic("webhook", "models", SEED)
    first_id = magics_of(shell).workspace.get_webhook("models").id
    other = tmp_path / "elsewhere"
    shell.run_line_magic("config", f"HooklabMagics.home = {str(other)!r}")
    shell.run_cell_magic("webhook", "models", SEED)
    assert (other / "hooklab.db").exists()
    # Seeded ids: the same first webhook id in a fresh workspace.
    assert magics_of(shell).workspace.get_webhook("models").id == first_id


def test_curl_command_sends_the_fields_the_template_reads() -> None:
    hook = hooklab.Workspace(":memory:").create_webhook("m", SEED)
    command = curl_command(hook, "http://127.0.0.1:1/hooks/x")
    assert command == (
        "curl -X POST http://127.0.0.1:1/hooks/x -d model=example -d friendly_name=example"
    )
    nested = hook.__class__(**{**hook.__dict__, "template": '{"a": "{{ body.repo.name }}"}'})
    assert '-d \'{"repo": {"name": "example"}}\'' in curl_command(nested, "http://h/x")


def test_workspace_subcommand_hands_the_python_api_what_the_magics_created(
    shell: InteractiveShell, tmp_path: Path
) -> None:
    shell.run_cell_magic("webhook", "models", SEED)
    ws = shell.run_line_magic("hooklab", "workspace")
    assert isinstance(ws, hooklab.Workspace)
    assert ws.path == str(tmp_path / "hooklab.db")
    assert [hook.name for hook in ws.list_webhooks()] == ["models"]


def test_the_extension_teaches_ipython_the_diffs_html_view(shell: InteractiveShell) -> None:
    requests = [HookRequest.fake(method="POST", form={"model": "a"})]
    changes = hooklab.diff(
        hooklab.replay(requests, SEED), hooklab.replay(requests, SEED.replace("product.", "p."))
    )
    assert shell.display_formatter is not None
    data, _ = shell.display_formatter.format(changes)
    assert "<table>" in data["text/html"] and "p.models.a" in data["text/html"]


def test_history_subcommands_read_a_deleted_webhooks_id_and_refuse_unknown_names(
    shell: InteractiveShell,
) -> None:
    shell.run_cell_magic("webhook", "models", SEED)
    ws = magics_of(shell).workspace
    hook = ws.get_webhook("models")
    ws.receive(hook.slug, HookRequest.fake(method="POST", form={"model": "a"}))
    shell.run_line_magic("hooklab", "delete models")
    assert len(shell.run_line_magic("hooklab", f"events {hook.id} --since 1w")) == 1
    assert len(shell.run_line_magic("hooklab", f"requests {hook.id}")) == 1
    with pytest.raises(UsageError, match=r"^Webhook 'models' not found\. A deleted webhook's "):
        shell.run_line_magic("hooklab", "events models")
    with pytest.raises(UsageError, match="'2 days' is not a time: use ISO 8601"):
        shell.run_line_magic("hooklab", "failures --since '2 days'")


def test_a_name_two_webhooks_share_is_refused_by_the_cell_and_the_subcommands(
    shell: InteractiveShell,
) -> None:
    ws = magics_of(shell).workspace
    first = ws.create_webhook("twins", SEED)
    second = ws.create_webhook("twins", SEED)
    ids = rf"\({first.id}, {second.id}\); use an id\.$"
    with pytest.raises(
        UsageError, match=r"^Webhook name 'twins' is ambiguous: 2 webhooks .*" + ids
    ):
        shell.run_cell_magic("webhook", "twins", SEED.replace("model-update", "changed"))
    for line in ("delete twins", "get twins", "events twins", "url twins"):
        with pytest.raises(UsageError, match=ids):
            shell.run_line_magic("hooklab", line)
    assert all("changed" not in hook.template for hook in ws.list_webhooks())
    assert len(ws.list_webhooks()) == 2


def test_ages_count_back_from_the_workspace_clock_in_deterministic_mode(
    shell: InteractiveShell,
) -> None:
    shell.run_line_magic("config", "HooklabMagics.deterministic = True")
    ws = magics_of(shell).workspace
    hook = ws.create_webhook("models", SEED)
    ws.receive(hook.slug, HookRequest.fake(method="POST", form={"model": "a"}))
    assert ws.clock().year == 2024  # the fixed clock, far from today
    assert len(shell.run_line_magic("hooklab", "events models --since 1h")) == 1
    assert len(shell.run_line_magic("hooklab", "requests --since 1h")) == 1
    assert len(shell.run_line_magic("hooklab", "events --until 1h")) == 0


def test_cases_export_subcommand_writes_cases_that_pass(
    shell: InteractiveShell, tmp_path: Path
) -> None:
    from hooklab.history.cases import run_cases

    shell.run_cell_magic("webhook", "models", SEED)
    ws = magics_of(shell).workspace
    slug = ws.get_webhook("models").slug
    for model in ("a", "b"):
        ws.receive(slug, HookRequest.fake(method="POST", form={"model": model}))
    target = tmp_path / "webhooks" / "models"
    said = shell.run_line_magic("hooklab", f"cases export models --to {target} --dedupe")
    assert repr(said).splitlines() == [
        f"Wrote 1 case for models to {target}",
        "  written: template.j2, webhook.json, cases/case-001.json",
    ]
    (result,) = run_cases(target)
    assert result.passed and result.case.spec["form"] == {"model": "a"}
    with pytest.raises(UsageError, match="--to"):
        shell.run_line_magic("hooklab", "cases export models")


def test_forwarding_says_the_history_already_stored_stays_and_how_to_send_it(
    shell: InteractiveShell, capsys: pytest.CaptureFixture[str]
) -> None:
    shell.run_cell_magic("webhook", "models", SEED)
    ws = magics_of(shell).workspace
    ws.receive(ws.get_webhook("models").slug, HookRequest.fake(method="POST", form={"model": "a"}))
    capsys.readouterr()
    shell.run_line_magic("hooklab", "forward --to http://user:secret@127.0.0.1:9/api")
    out = capsys.readouterr().out
    assert "the 1 stored before stay here" in out
    assert "`hooklab forward --to http://127.0.0.1:9/api` sends them once" in out
    assert "secret" not in out
    ws.receive(ws.get_webhook("models").slug, HookRequest.fake(method="POST", form={"model": "b"}))
    state = shell.run_line_magic("hooklab", "forward --stop http://user:secret@127.0.0.1:9/api")
    out = capsys.readouterr().out
    assert "stopped forwarding to http://127.0.0.1:9/api: 1 pending event dropped" in out
    assert len(state) == 0 and ws.forwarding() == [] and "secret" not in out


def test_prefect_events_says_what_is_missing_as_the_command_line_does(
    shell: InteractiveShell, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    with pytest.raises(UsageError, match=r"^%hooklab prefect-events: give the Prefect API URL"):
        shell.run_line_magic("hooklab", "prefect-events --since 1h")
    with pytest.raises(UsageError, match=r"^%hooklab prefect-events: give --since: Prefect reads"):
        shell.run_line_magic("hooklab", "prefect-events http://127.0.0.1:9/api")
    with pytest.raises(UsageError, match="'0' is not a positive whole number"):
        shell.run_line_magic("hooklab", "cases export models --to out --limit 0")


def pandas_bug(self: object) -> list[object]:
    """A bug that pandas reports as a ValueError: columns of different lengths."""
    pd.DataFrame({"id": [1, 2], "name": ["a"]})
    return []


def test_a_mistake_is_one_line_and_a_bug_shows_its_traceback(
    shell: InteractiveShell, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    mistake = shell.run_cell("%hooklab get nope")
    assert isinstance(mistake.error_in_exec, UsageError)
    shown = capsys.readouterr()
    assert (shown.out + shown.err).strip() == "UsageError: Webhook 'nope' not found."

    monkeypatch.setattr(hooklab.Workspace, "list_webhooks", pandas_bug)
    bug = shell.run_cell("%hooklab ls")
    assert isinstance(bug.error_in_exec, ValueError)
    shown = capsys.readouterr()
    text = re.sub(r"\x1b\[[0-9;]*m", "", shown.out + shown.err)  # IPython's colours
    assert "Traceback (most recent call last)" in text and "pandas_bug" in text
    assert text.rstrip().endswith("ValueError: All arrays must be of the same length")


def test_a_new_password_alone_reopens_the_store_and_is_never_shown(
    shell: InteractiveShell,
    postgres_cluster: PostgresCluster,
    postgres_url: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("PGPASSWORD", raising=False)
    monkeypatch.setenv("PGPASSFILE", "/nonexistent")
    database = postgres_url.rsplit("/", 1)[1]
    role = postgres_cluster.create_role(database, password="first-pw-1")
    with postgres_cluster.connect(database) as db:
        db.execute(f'GRANT CREATE ON SCHEMA public TO "{role.name}"')
    wrong = postgres_cluster.url(database, role.name, "wrong-pw-2")
    magics = magics_of(shell)

    def refused(why: str) -> str:
        with pytest.raises(UsageError, match=why) as raised:
            shell.run_line_magic("hooklab", "ls")
        return str(raised.value)

    try:
        shell.run_line_magic("config", f"HooklabMagics.store = {role.url!r}")
        shell.run_line_magic("hooklab", "ls")  # the store is open, with the first password
        shell.run_line_magic("config", f"HooklabMagics.store = {wrong!r}")  # only it changed
        said = refused("password authentication failed")
        magics.store = role.url  # set from Python, as %config does from a cell
        shell.run_line_magic("hooklab", "ls")
        magics.store = wrong
        said += refused("password authentication failed")
        magics.store = role.url
        shell.run_line_magic("hooklab", "ls")
        magics.store = postgres_cluster.url(database, role.name)  # no password now: none used
        said += refused("no password supplied|password authentication failed")
        shell.run_line_magic("config", "HooklabMagics")
        shown = capsys.readouterr()
    finally:
        magics._new_workspace(None)
        postgres_cluster.drop_database(database)
        postgres_cluster.drop_role(role.name)
    for secret in ("first-pw", "wrong-pw"):
        assert secret not in shown.out + shown.err + said
