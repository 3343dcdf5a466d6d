"""`hooklab cases export` and `hooklab cases run`, run as real processes."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from cli_support import base_env, run_cli

from hooklab import HookRequest, Workspace

TEMPLATE = """{
  "event": "order",
  "resource": {"prefect.resource.id": "o.{{ body.id }}"},
  "payload": {"qty": {{ body.qty }}}
}"""


def cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli(base_env(HOOKLAB_HOME=str(home)), *args)


def captured_home(home: Path) -> None:
    ws = Workspace(home / "hooklab.db")
    hook = ws.create_webhook("orders", TEMPLATE)
    for body in ({"id": 1, "qty": 2}, {"id": 2, "qty": 3}, {"id": 3}):
        ws.receive(hook.slug, HookRequest.fake("POST", json=body))
    ws.close()


def test_export_then_run_passes_then_a_changed_template_fails_then_update(tmp_path: Path) -> None:
    captured_home(tmp_path)
    target = tmp_path / "webhooks" / "orders"
    exported = cli(tmp_path, "cases", "export", "orders", "--to", str(target), "--dedupe")
    assert exported.returncode == 0, exported.stderr
    assert exported.stdout.strip() == f"Wrote 2 cases for orders to {target}"
    ran = cli(tmp_path, "cases", "run", str(tmp_path / "webhooks"))
    assert (ran.returncode, ran.stdout.strip()) == (0, "2 cases: 2 passed, 0 failed")

    (target / "template.j2").write_text(TEMPLATE.replace('"order"', '"order.v2"'))
    ran = cli(tmp_path, "cases", "run", str(tmp_path / "webhooks"))
    assert ran.returncode == 1
    assert 'events[0].event: expected "order", got "order.v2"' in ran.stdout
    assert ran.stdout.strip().endswith("2 cases: 1 passed, 1 failed")

    updated = cli(tmp_path, "cases", "run", str(target), "--update")
    assert updated.returncode == 0
    assert cli(tmp_path, "cases", "run", str(target)).returncode == 0


def test_export_limit_and_an_unknown_webhook(tmp_path: Path) -> None:
    captured_home(tmp_path)
    target = tmp_path / "w"
    assert (
        cli(tmp_path, "cases", "export", "orders", "--to", str(target), "--limit", "1").returncode
        == 0
    )
    (case,) = (target / "cases").glob("*.json")
    assert json.loads(case.read_text())["request"]["json"] == {"id": 3}
    missing = cli(tmp_path, "cases", "export", "nope", "--to", str(target))
    assert (missing.returncode, missing.stderr.strip()) == (1, "Webhook 'nope' not found.")


def test_run_a_malformed_case_is_one_line_naming_the_file(tmp_path: Path) -> None:
    cases = tmp_path / "webhooks" / "x" / "cases"
    cases.mkdir(parents=True)
    (cases.parent / "template.j2").write_text(TEMPLATE)
    (cases / "bad.json").write_text("{nope")
    ran = cli(tmp_path, "cases", "run", str(tmp_path / "webhooks"))
    assert ran.returncode == 1
    assert ran.stderr.count("\n") == 1 and str(cases / "bad.json") in ran.stderr
    empty = cli(tmp_path, "cases", "run", str(tmp_path / "nothing"))
    assert empty.returncode == 1 and "No cases under" in empty.stderr


# fuzz

WEAK = """{
  "event": "e",
  "resource": {"prefect.resource.id": "x"},
  "payload": {"qty": {{ body.qty }}}
}"""


def test_fuzz_a_template_file_prints_the_breaking_request_and_exits_1(tmp_path: Path) -> None:
    (tmp_path / "t.j2").write_text(WEAK)
    case = tmp_path / "case.json"
    case.write_text(json.dumps({"request": {"json": {"qty": 1}}, "expect": {}}))
    args = ("fuzz", "--template", f"@{tmp_path / 't.j2'}", "--example", str(case), "--seed", "1")
    found = cli(tmp_path, *args)
    assert found.returncode == 1, found.stderr
    assert "Template output is not valid JSON" in found.stdout
    assert '4 |   "payload": {"qty": {{ body.qty }}}' in found.stdout
    assert "request: {" in found.stdout
    assert cli(tmp_path, *args).stdout == found.stdout  # the same seed, the same findings


def test_fuzz_a_webhook_from_its_captured_requests(tmp_path: Path) -> None:
    captured_home(tmp_path)
    found = cli(tmp_path, "fuzz", "orders", "--max-examples", "50")
    assert found.returncode == 1 and '"qty": {{ body.qty }}' in found.stdout
    robust = WEAK.replace("{{ body.qty }}", '{{ body.get("qty") | tojson }}')
    (tmp_path / "r.j2").write_text(robust)
    passed = cli(tmp_path, "fuzz", "orders", "--template", str(tmp_path / "r.j2"))
    assert passed.returncode == 0 and passed.stdout.startswith("No failing request found")
    assert cli(tmp_path, "fuzz").returncode == 2


def test_a_case_file_nested_too_deeply_is_one_line_naming_the_file(tmp_path: Path) -> None:
    cases = tmp_path / "webhooks" / "x" / "cases"
    cases.mkdir(parents=True)
    (cases.parent / "template.j2").write_text(TEMPLATE)
    (cases / "deep.json").write_text('{"request": ' + "[" * 100_000 + "]" * 100_000 + "}")
    ran = cli(tmp_path, "cases", "run", str(tmp_path / "webhooks"))
    assert ran.returncode == 1 and "Traceback" not in ran.stderr
    [line] = ran.stderr.splitlines()
    assert line == f"{cases / 'deep.json'}: not JSON: nested too deeply " + (
        "(more brackets inside one another than can be read)"
    )
