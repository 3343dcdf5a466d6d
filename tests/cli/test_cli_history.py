"""`hooklab events` and `hooklab requests`, run as real processes over a real workspace file."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from uuid import UUID

import pandas as pd
import pytest
from cli_support import TEMPLATE, base_env, run_cli, run_with_terminal_stderr

import hooklab

START = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)


@pytest.fixture
def home(tmp_path: Path, new_id: Callable[[], UUID]) -> Path:
    """A home with two webhooks: `models` got three good requests and a bad one, an hour apart;
    `other` got one request just now."""
    home = tmp_path / "home"
    ws = hooklab.Workspace(home / "hooklab.db", new_id=new_id)
    models = ws.create_webhook("models", TEMPLATE)
    other = ws.create_webhook("other", TEMPLATE.replace("model-update", "other-update"))
    for hour, model in enumerate(["a", "b", "c"]):
        request = hooklab.HookRequest.fake(
            method="POST", form={"model": model}, received=START + timedelta(hours=hour)
        )
        ws.receive(models.slug, request)
    broken = hooklab.HookRequest.fake(
        method="POST",
        headers={"Content-Type": "application/json", "Authorization": "Bearer secret"},
        body="{oops",
        received=START + timedelta(hours=3),
    )
    ws.receive(models.slug, broken)
    ws.receive(other.slug, hooklab.HookRequest.fake(method="POST", json={"model": "z"}))
    ws.close()
    return home


def cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli(base_env(HOOKLAB_HOME=str(home)), *args)


def test_events_table_lists_events_and_failures(home: Path) -> None:
    result = cli(home, "events", "--webhook", "models")
    assert result.returncode == 0
    header, _, *rows = result.stdout.splitlines()
    assert header.split()[:4] == ["received", "(UTC)", "event", "resource"]
    assert len(rows) == 4
    assert "product.models.a" in rows[0] and "2024-05-01 12:00:00" in rows[0]
    assert "prefect-cloud.webhook.failed" in rows[3] and "Invalid JSON body" in rows[3]


def test_events_json_matches_the_workspace(home: Path) -> None:
    result = cli(home, "events", "-o", "json")
    assert result.returncode == 0
    exported = json.loads(result.stdout)
    ws = hooklab.Workspace(home / "hooklab.db")
    frame = ws.events()
    ws.close()
    assert [e["id"] for e in exported] == frame["id"].tolist()
    first = exported[0]
    assert first["event"] == "model-update"
    assert first["resource.id"] == "product.models.a"
    assert first["payload"]["body"] == {"model": "a"}  # nested, not text
    assert first["received"] == "2024-05-01T12:00:00+00:00"
    assert exported[3]["failed"] is True and exported[3]["error"].startswith("Invalid JSON body")
    assert exported[0]["error"] is None


def test_filters_by_webhook_time_event_and_failure(home: Path) -> None:
    def names(*args: str) -> list[str]:
        result = cli(home, "events", "-o", "json", *args)
        assert result.returncode == 0, result.stderr
        return [e["resource.id"] for e in json.loads(result.stdout)]

    assert names("--webhook", "other") == ["product.models.z"]
    assert names("--webhook", "models", "--since", "2024-05-01T13:00:00Z")[:2] == [
        "product.models.b", "product.models.c",
    ]  # fmt: skip
    assert names("--webhook", "models", "--until", "2024-05-01 13:00") == ["product.models.a"]
    assert names("--since", "1h") == ["product.models.z"]  # only `other` is recent
    assert names("--event", "other-update") == ["product.models.z"]
    assert len(names("--failed")) == 1
    assert names("--webhook", "models", "--limit", "1") == [names("--failed")[0]]


def test_an_unknown_webhook_name_is_an_error(home: Path) -> None:
    result = cli(home, "events", "--webhook", "nope")
    assert (result.returncode, result.stderr) == (
        1,
        "Webhook 'nope' not found. A deleted webhook's history is found by its id, which the "
        "history shows in place of its name.\n",
    )


def test_a_deleted_webhooks_history_stays_reachable_by_id(home: Path) -> None:
    ws = hooklab.Workspace(home / "hooklab.db")
    hook_id = ws.delete_webhook("other").id
    ws.close()
    result = cli(home, "events", "-o", "json", "--webhook", hook_id)
    assert [e["resource.id"] for e in json.loads(result.stdout)] == ["product.models.z"]
    # Where its name was, the tables show the id it is read by, whole.
    template = home / "edited.j2"
    template.write_text('{"event": "e", "resource": {"prefect.resource.id": "r"}}')
    replayed = cli(home, "replay", hook_id, "--template", str(template))
    assert replayed.returncode == 1
    assert replayed.stderr == (
        f"webhook {hook_id} was deleted: its history stays, but it has no template to use. "
        f"Replay its requests in Python: hooklab.replay(workspace.captured('{hook_id}'), "
        "template)\n"
    )
    by_name = cli(home, "replay", "other", "--template", str(template))
    assert (by_name.returncode, by_name.stderr) == (1, "Webhook 'other' not found.\n")
    narrow = {**base_env(HOOKLAB_HOME=str(home)), "COLUMNS": "80"}
    assert hook_id in run_cli(narrow, "requests").stdout
    assert hook_id in run_cli(narrow, "events").stdout


def test_events_csv_holds_nested_values_as_json(home: Path) -> None:
    result = cli(home, "events", "-o", "csv")
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert json.loads(rows[0]["payload"])["body"] == {"model": "a"}
    assert json.loads(rows[0]["related"])[0]["prefect.resource.role"] == "webhook"
    assert rows[3]["failed"] == "True" and rows[0]["error"] == ""


def test_requests_csv_keeps_every_request_without_the_secret(home: Path) -> None:
    result = cli(home, "requests", "-o", "csv")
    assert result.returncode == 0
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [row["status"] for row in rows] == ["204", "204", "204", "400", "204"]
    assert rows[0]["body"] == "model=a"
    assert json.loads(rows[3]["headers"])["Content-Type"] == "application/json"
    assert "secret" not in result.stdout and "Authorization" not in result.stdout
    assert rows[0]["received"] == "2024-05-01T12:00:00+00:00"


def test_requests_table(home: Path) -> None:
    result = cli(home, "requests", "--webhook", "models")
    header, _, *rows = result.stdout.splitlines()
    assert "status" in header and len(rows) == 4
    assert rows[3].split()[3:6] == ["POST", "application/json", "5"]


@pytest.mark.parametrize("kind", ["events", "requests"])
def test_export_to_files_picks_the_format_from_the_suffix(home: Path, kind: str) -> None:
    ws = hooklab.Workspace(home / "hooklab.db")
    expected = ws.events() if kind == "events" else ws.requests()
    ws.close()
    for suffix in ("csv", "json", "parquet"):
        path = home / f"export.{suffix}"
        result = cli(home, kind, "--file", str(path))
        assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
        if suffix == "csv":
            ids = pd.read_csv(path)["id"].tolist()
        elif suffix == "json":
            ids = [row["id"] for row in json.loads(path.read_text())]
        else:
            frame = pd.read_parquet(path)
            ids = frame["id"].tolist()
            assert str(frame["received"].dtype) == "datetime64[us, UTC]"
            assert frame["received"].tolist() == expected["received"].tolist()
        assert ids == expected["id"].tolist(), suffix


def test_parquet_payloads_are_json_text(home: Path) -> None:
    path = home / "events.parquet"
    assert cli(home, "events", "-o", "parquet", "--file", str(path)).returncode == 0
    frame = pd.read_parquet(path)
    assert json.loads(frame["payload"][0])["body"] == {"model": "a"}


def test_parquet_to_a_pipe_is_bytes(home: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "hooklab", "events", "-o", "parquet"],
        capture_output=True,
        env=base_env(HOOKLAB_HOME=str(home)),
        timeout=60,
    )
    assert result.returncode == 0
    assert len(pd.read_parquet(io.BytesIO(result.stdout))) == 5


def test_an_empty_history_exports_cleanly(tmp_path: Path) -> None:
    home = tmp_path / "empty"
    made = cli(home, "webhook", "create", "w", "-t", "{}")  # a home, with nothing received yet
    assert made.returncode == 0
    assert json.loads(cli(home, "events", "-o", "json").stdout) == []
    assert cli(home, "events", "-o", "csv").stdout.startswith("id,")
    assert cli(home, "requests").returncode == 0


@pytest.mark.parametrize(
    "command",
    [
        ["events", "-o", "json"],
        ["requests"],
        ["replay", "hook", "--template", "{T}"],
        ["cases", "export", "hook", "--to", "{T}.cases"],
    ],
)
def test_reading_a_home_that_does_not_exist_says_so_and_makes_nothing(
    tmp_path: Path, command: list[str]
) -> None:
    template = tmp_path / "T"
    template.write_text("{}")
    home = tmp_path / "mistyped"
    result = cli(home, *(arg.format(T=template) for arg in command))
    assert result.returncode != 0
    assert f"no hooklab home at {home}, so nothing to read: check --home" in result.stderr
    assert result.stderr.count("\n") == 1
    assert not home.exists()


def test_webhooks_of_a_home_that_does_not_exist_are_none_and_nothing_is_made(
    tmp_path: Path,
) -> None:
    home = tmp_path / "mistyped"
    listed = cli(home, "webhook", "ls", "-o", "json")
    assert (listed.returncode, json.loads(listed.stdout)) == (0, [])
    for command in (["webhook", "get", "w"], ["webhook", "delete", "w"]):
        refused = cli(home, *command)
        assert (refused.returncode, refused.stderr) == (1, "Webhook 'w' not found.\n")
    assert (
        json.loads(cli(home, "webhook", "ls", "--store", str(home) + ".db", "-o", "json").stdout)
        == []
    )
    assert not home.exists()
    assert not Path(str(home) + ".db").exists()


def test_reading_a_store_file_that_does_not_exist_says_so_and_makes_nothing(
    tmp_path: Path,
) -> None:
    typo = tmp_path / "histroy.db"
    named = cli(tmp_path / "home", "events", "--store", str(typo))
    assert named.returncode != 0
    assert named.stderr == (
        f"hooklab: cannot use the store: no SQLite store at {typo}, so nothing to read: "
        "check --store or HOOKLAB_STORE\n"
    )
    from_env = run_cli(base_env(HOOKLAB_STORE=str(typo)), "requests")
    assert f"no SQLite store at {typo}" in from_env.stderr
    assert not typo.exists()


def test_a_table_cannot_go_to_a_file(home: Path) -> None:
    result = cli(home, "events", "-o", "table", "--file", str(home / "events.txt"))
    assert result.returncode == 2
    assert "choose -o json, csv or parquet" in result.stderr


@pytest.mark.parametrize("kind", ["events", "requests"])
def test_a_file_suffix_that_names_no_format_is_refused_by_name(home: Path, kind: str) -> None:
    path = home / "out.xlsx"
    result = cli(home, kind, "--file", str(path))
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert f"--file {path}: .xlsx is not a suffix hooklab writes" in result.stderr
    assert "name the file .json, .csv or .parquet" in result.stderr
    assert "table" not in result.stderr
    result = cli(home, kind, "--file", str(home / "out"))
    assert "the name has no suffix; name the file .json, .csv or .parquet" in result.stderr
    assert not path.exists()


@pytest.mark.parametrize("suffix", ["parquet", "csv", "json"])
def test_a_file_that_cannot_be_written_is_refused_in_one_line(home: Path, suffix: str) -> None:
    folder = home / f"exports.{suffix}"
    folder.mkdir()
    for target, said in (
        (home / "no-such-folder" / f"x.{suffix}", "there is no folder"),
        (folder, "that is a folder; name a file in it"),
    ):
        result = cli(home, "events", "--file", str(target))
        assert result.returncode == 2, result.stderr
        assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
        assert f"--file {target}: {said}" in result.stderr


@pytest.mark.parametrize("fmt", ["csv", "json", "parquet"])
def test_an_export_shows_progress_on_a_terminal_only(home: Path, fmt: str) -> None:
    path = home / f"out.{fmt}"
    status, shown = run_with_terminal_stderr(
        base_env(HOOKLAB_HOME=str(home)), "events", "-o", fmt, "--file", str(path)
    )
    assert status == 0
    assert "Exporting events: 5/5 (100%)" in shown
    assert path.stat().st_size > 0
    # Without a terminal (above, in the other tests) stderr stays empty.
    assert cli(home, "events", "-o", fmt, "--file", str(path)).stderr == ""


def test_the_history_without_pyarrow_says_how_to_get_it(home: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "no-pyarrow" / "pyarrow"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text("raise ImportError('pyarrow is not installed')\n")
    env = base_env(HOOKLAB_HOME=str(home), PYTHONPATH=str(blocker.parent))
    for output in (["--file", str(tmp_path / "events.parquet")], ["-o", "csv"], []):
        result = run_cli(env, "events", *output)
        assert result.returncode == 1
        assert result.stderr == "Reading the history needs pyarrow: pip install pyarrow\n"
    assert not (tmp_path / "events.parquet").exists()


def test_requests_filter_by_the_events_they_made_and_by_failure(home: Path) -> None:
    def bodies(*args: str) -> list[str]:
        result = cli(home, "requests", "-o", "json", *args)
        assert result.returncode == 0, result.stderr
        return [r["body"] for r in json.loads(result.stdout)]

    assert bodies("--event", "other-update") == ['{"model":"z"}']
    assert bodies("--failed") == ["{oops"]
    assert bodies("--webhook", "models", "--until", "2024-05-01T13:00Z") == ["model=a"]


def test_a_bad_time_names_the_value_and_the_accepted_forms(home: Path) -> None:
    result = cli(home, "events", "--since", "yesterday")
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr.startswith(
        "hooklab events: error: argument --since: 'yesterday' is not a time: use ISO 8601"
    )
    assert "30m, 2h, 1d, 1w" in result.stderr and len(result.stderr.splitlines()) == 1


@pytest.mark.parametrize("kind", ["events", "requests"])
def test_tables_in_a_pipe_are_plain_text(home: Path, kind: str) -> None:
    result = run_cli({**base_env(HOOKLAB_HOME=str(home)), "COLUMNS": "60"}, kind)
    assert result.returncode == 0
    assert "\x1b" not in result.stdout  # no colour or cursor codes
    assert not any("\u2500" <= char <= "\u259f" for char in result.stdout)  # no box drawing
    header, rule, *rows = result.stdout.splitlines()
    assert header.split()[:2] == ["received", "(UTC)"]
    assert set(rule) == {"-", " "} and len(rows) == 5
    assert all(line == line.rstrip() for line in result.stdout.splitlines())


@pytest.mark.parametrize("kind", ["events", "requests"])
def test_a_limit_of_zero_reads_nothing_as_the_python_api_does(home: Path, kind: str) -> None:
    result = cli(home, kind, "--limit", "0", "-o", "json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == []
    assert len(getattr(hooklab.Workspace(home / "hooklab.db"), kind)(limit=0)) == 0
    refused = cli(home, kind, "--limit", "-1")
    assert refused.returncode == 2
    assert "'-1' is not a whole number of 0 or more" in refused.stderr
