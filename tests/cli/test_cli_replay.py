"""`hooklab replay`, run as a real process over a real workspace file."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from cli_support import TEMPLATE, base_env, run_cli, run_with_terminal_stderr

import hooklab
import hooklab.history.replay


def cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli(base_env(HOOKLAB_HOME=str(home)), *args)


def write(path: Path, text: str) -> str:
    path.write_text(text)
    return str(path)


NEW_TEMPLATE = TEMPLATE.replace(
    '"model-update"', "\"model-{{ 'changed' if body.model == 'b' else 'update' }}\""
)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """`models` captured three good requests (a, b, c) and one with a broken JSON body."""
    home = tmp_path / "home"
    ws = hooklab.Workspace(home / "hooklab.db")
    hook = ws.create_webhook("models", TEMPLATE)
    for model in "abc":
        ws.receive(hook.slug, hooklab.HookRequest.fake(method="POST", form={"model": model}))
    ws.receive(
        hook.slug,
        hooklab.HookRequest.fake(
            method="POST", headers={"Content-Type": "application/json"}, body="{oops"
        ),
    )
    ws.close()
    return home


def expected_diff(home: Path, template: str) -> hooklab.history.replay.Diff:
    from hooklab.history.replay import diff, replay

    ws = hooklab.Workspace(home / "hooklab.db")
    try:
        captured = ws.captured("models")
        hook = ws.get_webhook("models")
        return diff(replay(captured, hook, workspace=ws), replay(captured, template, workspace=ws))
    finally:
        ws.close()


def test_replay_summarizes_what_the_new_template_changes(home: Path, tmp_path: Path) -> None:
    template = write(tmp_path / "v2.j2", NEW_TEMPLATE)
    ws = hooklab.Workspace(home / "hooklab.db")
    stored_before = (len(ws.requests()), len(ws.events()))
    ws.close()

    result = cli(home, "replay", "models", "--template", template)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("Current template: 4 requests")
    assert lines[1].startswith("New template:     4 requests")
    assert lines[2] == expected_diff(home, NEW_TEMPLATE).summary()
    assert lines[3:] == ["  event: changed in 1 of 4 requests"]

    ws = hooklab.Workspace(home / "hooklab.db")
    assert (len(ws.requests()), len(ws.events())) == stored_before  # a replay stores nothing
    ws.close()


def test_replay_json_lists_every_change(home: Path, tmp_path: Path) -> None:
    template = write(tmp_path / "v2.j2", NEW_TEMPLATE)
    result = cli(home, "replay", "models", "--template", template, "-o", "json")
    report = json.loads(result.stdout)
    assert report["summary"] == expected_diff(home, NEW_TEMPLATE).summary()
    [change] = report["changes"]
    assert (change["change"], change["field"]) == ("changed", "event")
    assert (change["old"], change["new"]) == ("model-update", "model-changed")


def test_replay_through_the_same_template_changes_nothing(home: Path, tmp_path: Path) -> None:
    result = cli(home, "replay", "models", "--template", write(tmp_path / "same.j2", TEMPLATE))
    assert result.stdout.splitlines()[2] == expected_diff(home, TEMPLATE).summary()
    assert "4 unchanged" in result.stdout.splitlines()[2]


def test_replay_takes_the_template_as_at_file_like_render_and_create(
    home: Path, tmp_path: Path
) -> None:
    same = write(tmp_path / "same.j2", TEMPLATE)
    result = cli(home, "replay", "models", "--template", f"@{same}")
    assert result.returncode == 0, result.stderr
    assert "4 unchanged" in result.stdout.splitlines()[2]


def test_replay_shows_progress_on_a_terminal(home: Path, tmp_path: Path) -> None:
    template = write(tmp_path / "v2.j2", NEW_TEMPLATE)
    status, shown = run_with_terminal_stderr(
        base_env(HOOKLAB_HOME=str(home)), "replay", "models", "--template", template
    )
    assert status == 0
    assert "Replaying through the current and the new template: 4/4 (100%)" in shown


def test_replay_errors(home: Path, tmp_path: Path) -> None:
    broken = write(tmp_path / "broken.j2", '{"event": "x",\n{% for %}')
    result = cli(home, "replay", "models", "--template", broken)
    assert result.returncode == 1
    assert result.stderr.startswith("Invalid template: line 2")
    result = cli(home, "replay", "nope", "--template", broken)
    assert (result.returncode, result.stderr) == (1, "Webhook 'nope' not found.\n")
    result = cli(home, "replay", "models", "--template", broken, "--since", "2d", "--limit", "x")
    assert result.returncode == 2


def test_replay_with_nothing_captured_says_so(home: Path, tmp_path: Path) -> None:
    template = write(tmp_path / "v2.j2", NEW_TEMPLATE)
    result = cli(home, "replay", "models", "--template", template, "--since", "2999-01-01")
    assert (result.returncode, result.stdout) == (0, "No captured requests for webhook models.\n")


def test_replay_json_is_strict_when_events_appear_and_vanish(home: Path, tmp_path: Path) -> None:
    # 'b' now fails (its event is dropped, a failure is added in its place) and the broken
    # request still fails: old or new values that do not exist must be null, never NaN.
    template = TEMPLATE.replace(
        "{{ body.model }}", "{{ body.model if body.model != 'b' else x.y() }}"
    )
    result = cli(
        home, "replay", "models", "--template", write(tmp_path / "v3.j2", template), "-o", "json"
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout, parse_constant=lambda name: pytest.fail(f"{name} in JSON"))
    assert report["changes"], report
