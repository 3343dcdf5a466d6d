"""`hooklab render`, run as a real process."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from cli_support import TEMPLATE, base_env, run_cli

import hooklab


def cli(home: Path, *args: str, input: str = "") -> subprocess.CompletedProcess[str]:
    return run_cli(base_env(HOOKLAB_HOME=str(home)), *args, input=input)


def write(path: Path, text: str) -> str:
    path.write_text(text)
    return str(path)


# render


def test_render_prints_the_event(tmp_path: Path) -> None:
    template = write(tmp_path / "t.j2", TEMPLATE)
    request = write(
        tmp_path / "r.json",
        json.dumps({"method": "POST", "headers": {"X-Source": "ci"}, "form": {"model": "recs"}}),
    )
    result = cli(tmp_path, "render", "--template", template, "--request", request)
    assert result.returncode == 0, result.stderr
    event = json.loads(result.stdout)
    assert event["event"] == "model-update"
    assert event["resource"] == {"prefect.resource.id": "product.models.recs"}
    assert event["payload"]["body"] == {"model": "recs"}
    assert event["payload"]["headers"]["X-Source"] == "ci"
    assert event["related"][0]["prefect.resource.role"] == "webhook"


@pytest.mark.parametrize(
    "spec",
    [
        {"json": {"model": "from-json"}},
        {"body": '{"model": "from-text"}', "headers": {"Content-Type": "application/json"}},
        {"method": "GET", "query": {"model": "from-query"}},
    ],
)
def test_render_reads_every_kind_of_request(tmp_path: Path, spec: dict[str, object]) -> None:
    template = TEMPLATE.replace("body.model", "body.model or query.model")
    result = cli(
        tmp_path,
        "render",
        "--template",
        write(tmp_path / "t.j2", template),
        "--request",
        write(tmp_path / "r.json", json.dumps(spec)),
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["resource"]["prefect.resource.id"].startswith(
        "product.models.from-"
    )


def test_render_failure_is_one_line_then_the_template_line_it_names(tmp_path: Path) -> None:
    template = write(tmp_path / "t.j2", '{"event": "x",\n "resource": {{ body.model }\n}')
    request = write(tmp_path / "r.json", '{"form": {"model": "m"}}')
    result = cli(tmp_path, "render", "--template", template, "--request", request)
    assert (result.returncode, result.stdout) == (1, "")
    error, quoted = result.stderr.splitlines()
    assert error.startswith("line 2: Template syntax error")
    assert quoted == '  template   2 |  "resource": {{ body.model }'


def test_render_points_into_the_rendered_line_and_the_template_line_with_the_fix(
    tmp_path: Path,
) -> None:
    template = write(
        tmp_path / "t.j2",
        '{\n  "event": "shop.order.{{ body.order_id }}",\n'
        '  "resource": {"prefect.resource.id": "shop"}\n}',
    )
    request = write(tmp_path / "r.json", '{"json": {"order_id": "A\\\\1\\nB"}}')
    result = cli(tmp_path, "render", "--template", template, "--request", request)
    assert (result.returncode, result.stdout) == (1, "")
    lines = result.stderr.splitlines()
    error = next(line for line in lines if line.startswith("Template output is not valid JSON"))
    rendered, caret, made_by, cause, fix = lines[lines.index(error) + 1 :]
    assert rendered == '  rendered   2 |   "event": "shop.order.A\\1'
    assert caret.index("^") == rendered.index("\\1")  # under the backslash
    assert made_by == '  template   2 |   "event": "shop.order.{{ body.order_id }}",'
    assert cause.startswith("  body.order_id is written inside a JSON string as it is")
    assert fix == '  fix: "event": {{ ("shop.order." ~ body.order_id)|tojson }},'


def test_render_takes_the_template_as_at_file_and_warns_as_the_notebook_does(
    tmp_path: Path,
) -> None:
    template = write(
        tmp_path / "t.j2",
        '{"event": "x", "resource": {"prefect.resource.id": "r"}, "payload": {{ body }}}',
    )
    request = write(tmp_path / "r.json", '{"json": {"model": "m"}}')
    result = cli(tmp_path, "render", "--template", f"@{template}", "--request", request)
    assert result.returncode == 1  # a dict renders as a Python repr: not JSON
    assert "{{ body }}" in result.stderr.splitlines()[0]  # the notebook's warning comes first
    assert result.stderr.startswith("warning: line 1:")


def test_render_reports_an_invalid_event_like_prefect(tmp_path: Path) -> None:
    template = write(tmp_path / "t.j2", '{"event": "x", "resource": {}}')
    request = write(tmp_path / "r.json", "{}")
    result = cli(tmp_path, "render", "--template", template, "--request", request)
    assert result.returncode == 1
    assert "Resources must include the prefect.resource.id label" in result.stderr


def test_render_reads_the_template_from_stdin(tmp_path: Path) -> None:
    request = write(tmp_path / "r.json", '{"form": {"model": "piped"}}')
    result = cli(tmp_path, "render", "--template", "-", "--request", request, input=TEMPLATE)
    assert json.loads(result.stdout)["resource"]["prefect.resource.id"] == "product.models.piped"


def test_render_as_a_stored_webhook(tmp_path: Path) -> None:
    ws = hooklab.Workspace(tmp_path / "hooklab.db")
    hook = ws.create_webhook("models", TEMPLATE)
    ws.close()
    request = write(tmp_path / "r.json", '{"form": {"model": "stored"}}')
    result = cli(tmp_path, "render", "--webhook", "models", "--request", request)
    event = json.loads(result.stdout)
    assert event["resource"]["prefect.resource.id"] == "product.models.stored"
    assert event["related"][-1]["prefect.resource.id"] == hook.resource_id


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("not json", "is not JSON"),
        ("[1, 2]", "must hold a JSON object"),
        ('{"mthod": "POST"}', "unknown keys mthod"),
        ('{"json": {}, "form": {}}', "only one of body, json and form"),
    ],
)
def test_a_bad_request_file_is_a_bad_argument(tmp_path: Path, content: str, message: str) -> None:
    template = write(tmp_path / "t.j2", TEMPLATE)
    request = write(tmp_path / "r.json", content)
    result = cli(tmp_path, "render", "--template", template, "--request", request)
    assert result.returncode == 2
    [line] = result.stderr.splitlines()
    assert message in line and line.startswith("hooklab render: error: argument --request")


def test_render_needs_a_template_or_a_webhook(tmp_path: Path) -> None:
    request = write(tmp_path / "r.json", "{}")
    result = cli(tmp_path, "render", "--request", request)
    assert result.returncode == 2
    assert "--template" in result.stderr


# A template nested too deeply for Jinja's parser: one line naming its line, on every command.

DEEP = '{"event": "x",\n "n": {{ ' + "(" * 5000 + "1" + ")" * 5000 + " }}}"
NESTED = "line 2: Nested too deeply"


def test_a_template_nested_too_deeply_is_one_line_from_every_command(tmp_path: Path) -> None:
    template = write(tmp_path / "deep.j2", DEEP)
    request = write(tmp_path / "r.json", '{"json": {"n": 1}}')
    case_folder = tmp_path / "webhooks" / "deep"
    (case_folder / "cases").mkdir(parents=True)
    write(case_folder / "template.j2", DEEP)
    write(
        case_folder / "cases" / "one.json", json.dumps({"request": {}, "expect": {"status": 204}})
    )

    rendered = cli(tmp_path, "render", "--template", template, "--request", request)
    assert (rendered.returncode, rendered.stdout) == (1, "")
    error, quoted = rendered.stderr.splitlines()  # the error, then the line it names, cut short
    assert error.startswith(NESTED) and quoted.startswith('  template   2 |  "n": {{ ((')
    assert len(quoted) < 300

    created = cli(tmp_path, "webhook", "create", "deep", "-t", f"@{template}")
    assert created.returncode == 1
    assert created.stderr.splitlines() == [f"Invalid template: {NESTED}{DEEP_REASON}"]

    fuzzed = cli(tmp_path, "fuzz", "--template", f"@{template}", "--max-examples", "5")
    assert fuzzed.returncode == 1 and NESTED.removeprefix("line 2: ") in fuzzed.stdout
    assert '2 | {"event": "x",' not in fuzzed.stdout and '   2 |  "n": {{ ((' in fuzzed.stdout

    ran = cli(tmp_path, "cases", "run", str(tmp_path / "webhooks"))
    assert ran.returncode == 1 and f"error: {NESTED}" in ran.stdout
    assert max(len(line) for line in ran.stdout.splitlines()) < 300  # the line quoted, cut short

    for result in (rendered, created, fuzzed, ran):
        assert "Traceback" not in result.stdout + result.stderr


DEEP_REASON = ": too many brackets, operators or filters inside one another"


# Python's own limits, said in the user's words.


def test_a_number_too_long_to_write_is_one_line_in_the_users_words(tmp_path: Path) -> None:
    template = write(tmp_path / "t.j2", '{"event": "{{ (10 ** 999) ** 5 }}"}')
    request = write(tmp_path / "r.json", "{}")
    rendered = cli(tmp_path, "render", "--template", template, "--request", request)
    assert rendered.returncode == 1
    error, *_quoted = rendered.stderr.splitlines()
    assert error == (
        "line 1: A number in the template has more than 4300 digits, more than can be written "
        "as text"
    )


def test_a_request_file_nested_too_deeply_is_a_bad_argument(tmp_path: Path) -> None:
    template = write(tmp_path / "t.j2", TEMPLATE)
    request = write(tmp_path / "r.json", "[" * 100_000 + "]" * 100_000)
    result = cli(tmp_path, "render", "--template", template, "--request", request)
    assert result.returncode == 2
    [line] = result.stderr.splitlines()
    assert "is not JSON: nested too deeply (more brackets inside one another than can be read)" in (
        line
    )
