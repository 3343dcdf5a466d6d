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
    assert exported.stdout.splitlines()[0] == f"Wrote 2 cases for orders to {target}"
    ran = cli(tmp_path, "cases", "run", str(tmp_path / "webhooks"))
    assert (ran.returncode, ran.stdout.strip()) == (0, "2 cases: 2 passed, 0 failed")

    (target / "template.j2").write_text(TEMPLATE.replace('"order"', '"order.v2"'))
    ran = cli(tmp_path, "cases", "run", str(tmp_path / "webhooks"))
    assert ran.returncode == 1
    assert 'events[0].event: expected "order", got "order.v2"' in ran.stdout
    assert ran.stdout.strip().endswith("2 cases: 1 passed, 1 failed")

    updated = cli(tmp_path, "cases", "run", str(target), "--update")
    assert updated.returncode == 0
    lines = updated.stdout.splitlines()
    assert lines[0] == "Rewrote 1 case file to what the templates produce now:"
    assert lines[1].endswith("case-001.json") and '    -        "event": "order",' in lines
    assert '    +        "event": "order.v2",' in lines and lines[-1] == "2 cases: 1 rewritten"
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
    assert "A field the template reads is missing from the request" in found.stdout
    assert '4 |   "payload": {"qty": {{ body.qty }}}' in found.stdout
    assert 'fix: "payload": {"qty": {{ body.qty|default(none)|tojson }}}' in found.stdout
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


# What an exported case keeps of a request: no credential, no header the template does not read.

SIGNED = """{
  "event": "gh.{{ headers['X-GitHub-Event'] }}",
  "resource": {"prefect.resource.id": "gh.{{ headers['X-Auth-Token'] }}.{{ body.id }}"},
  "related": [{"prefect.resource.id": "k.{{ headers.get('X-Api-Key', 'none') }}",
               "prefect.resource.role": "key"}]
}"""
SECRETS = ("cookie-secret", "proxy-secret", "api-key-secret", "token-secret", "query-secret")


def sent_with_credentials(home: Path) -> None:
    ws = Workspace(home / "hooklab.db")
    hook = ws.create_webhook("gh", SIGNED)
    headers = {
        "Host": "example.org",
        "User-Agent": "curl/8.0",
        "X-GitHub-Event": "push",
        "X-Other": "not read",
        "Cookie": "session=cookie-secret",
        "Proxy-Authorization": "Basic proxy-secret",
        "X-Api-Key": "api-key-secret",
        "X-Auth-Token": "token-secret",
    }
    request = HookRequest.fake("POST", json={"id": 7}, headers=headers, query="token=query-secret")
    ws.receive(hook.slug, request)
    ws.close()


def test_an_exported_case_keeps_only_what_the_template_reads_and_masks_secrets(
    tmp_path: Path,
) -> None:
    sent_with_credentials(tmp_path)
    target = tmp_path / "webhooks" / "gh"
    exported = cli(tmp_path, "cases", "export", "gh", "--to", str(target))
    assert exported.returncode == 0, exported.stderr
    case = json.loads((target / "cases" / "case-001.json").read_text())
    assert case["request"]["headers"] == {
        "X-GitHub-Event": "push",
        "X-Auth-Token": "REDACTED",
        "Content-Type": "application/json",
    }
    assert case["request"]["query"] == "token=REDACTED"
    written = "".join(path.read_text() for path in target.rglob("*") if path.is_file())
    assert not [secret for secret in SECRETS if secret in written]
    [warning] = [line for line in exported.stdout.splitlines() if line.startswith("warning:")]
    assert "x-api-key (never stored: left out)" in warning
    assert "X-Auth-Token (written as REDACTED)" in warning
    assert cli(tmp_path, "cases", "run", str(target)).returncode == 0


# What an export does to a folder a person also writes in.


def linked_outside(tmp_path: Path) -> tuple[Path, Path]:
    """A repository whose first case file is a link to a file outside it."""
    outside = tmp_path / "bashrc"
    outside.write_text("export PATH=/usr/bin\n")
    target = tmp_path / "repo" / "webhooks" / "orders"
    (target / "cases").mkdir(parents=True)
    (target / "cases" / "case-001.json").symlink_to(outside)
    return outside, target


def test_export_never_writes_through_a_link(tmp_path: Path) -> None:
    captured_home(tmp_path)
    outside, target = linked_outside(tmp_path)
    refused = cli(tmp_path, "cases", "export", "orders", "--to", str(target))
    assert refused.returncode == 1 and "cases/case-001.json" in refused.stderr
    assert len(refused.stderr.splitlines()) == 1 and "--force" in refused.stderr
    assert not (target / "template.j2").exists()  # nothing written

    forced = cli(tmp_path, "cases", "export", "orders", "--to", str(target), "--force")
    assert forced.returncode == 0, forced.stderr
    assert outside.read_text() == "export PATH=/usr/bin\n"
    case = target / "cases" / "case-001.json"
    assert not case.is_symlink() and json.loads(case.read_text())["request"]["json"]["id"] == 1
    assert not list(target.rglob("*.tmp"))


def test_export_refuses_a_folder_that_is_a_link_or_links_outside(tmp_path: Path) -> None:
    captured_home(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    repo = tmp_path / "repo"
    (repo / "webhooks").mkdir(parents=True)
    (repo / "webhooks" / "orders").symlink_to(elsewhere)
    refused = cli(tmp_path, "cases", "export", "orders", "--to", str(repo / "webhooks" / "orders"))
    assert refused.returncode == 1 and "is a symbolic link" in refused.stderr
    (repo / "webhooks" / "linked").mkdir()
    (repo / "webhooks" / "linked" / "cases").symlink_to(elsewhere)
    refused = cli(tmp_path, "cases", "export", "orders", "--to", str(repo / "webhooks" / "linked"))
    assert refused.returncode == 1 and "is a symbolic link" in refused.stderr
    assert list(elsewhere.iterdir()) == []
    assert not (repo / "webhooks" / "linked" / "template.j2").exists()


def test_export_keeps_what_a_person_wrote_and_removes_only_its_own_stale_cases(
    tmp_path: Path,
) -> None:
    captured_home(tmp_path)
    target = tmp_path / "webhooks" / "orders"
    target.mkdir(parents=True)
    (target / "webhook.json").write_text('{"signature_preset": "github", "signature_secret": "s"}')
    first = cli(tmp_path, "cases", "export", "orders", "--to", str(target))
    assert first.returncode == 0, first.stderr
    assert json.loads((target / "webhook.json").read_text()) == {
        "signature_preset": "github",
        "signature_secret": "s",
    }
    assert len(list((target / "cases").glob("case-*.json"))) == 3
    (target / "cases" / "edge.json").write_text(
        json.dumps({"request": {"json": {"id": 9, "qty": 1}}, "expect": {"status": 401}})
    )

    second = cli(tmp_path, "cases", "export", "orders", "--to", str(target), "--limit", "1")
    assert second.returncode == 0, second.stderr
    lines = second.stdout.splitlines()
    assert lines[0] == f"Wrote 1 case for orders to {target}"
    assert "  written: cases/case-001.json" in lines
    assert "  unchanged: template.j2, webhook.json" in lines
    assert "  kept: cases/edge.json (not written by an export: left as they are)" in lines
    assert (
        "  removed: cases/case-002.json, cases/case-003.json (stale cases of the last export)"
        in (lines)
    )
    assert sorted(p.name for p in (target / "cases").iterdir()) == ["case-001.json", "edge.json"]

    (target / "template.j2").write_text(TEMPLATE.replace('"order"', '"order.mine"'))
    third = cli(tmp_path, "cases", "export", "orders", "--to", str(target))
    assert third.returncode == 1 and "template.j2" in third.stderr and "--force" in third.stderr
    assert '"order.mine"' in (target / "template.j2").read_text()
    assert sorted(p.name for p in (target / "cases").iterdir()) == ["case-001.json", "edge.json"]
    forced = cli(tmp_path, "cases", "export", "orders", "--to", str(target), "--force")
    assert forced.returncode == 0 and (target / "template.j2").read_text() == TEMPLATE


def test_update_replaces_a_linked_case_and_refuses_a_linked_cases_folder(tmp_path: Path) -> None:
    outside, target = linked_outside(tmp_path)
    (target / "template.j2").write_text(TEMPLATE)
    (target / "cases" / "case-001.json").unlink()
    outside.write_text(
        json.dumps({"request": {"json": {"id": 1, "qty": 2}}, "expect": {"status": 400}})
    )
    (target / "cases" / "case-001.json").symlink_to(outside)
    (target / "cases" / "case-002.json").write_text(
        json.dumps({"request": {"json": {"id": 2, "qty": 3}}, "expect": {"status": 400}})
    )
    before = outside.read_text()
    updated = cli(tmp_path, "cases", "run", str(target), "--update")
    assert updated.returncode == 0, updated.stderr
    assert outside.read_text() == before
    assert not (target / "cases" / "case-001.json").is_symlink()
    assert cli(tmp_path, "cases", "run", str(target)).returncode == 0

    elsewhere = tmp_path / "elsewhere"
    (target / "cases").rename(elsewhere)
    (target / "cases").symlink_to(elsewhere)
    (elsewhere / "case-002.json").write_text(
        json.dumps({"request": {"json": {"id": 2, "qty": 3}}, "expect": {"status": 400}})
    )
    refused = cli(tmp_path, "cases", "run", str(target), "--update")
    assert refused.returncode == 1 and "is a symbolic link" in refused.stderr
    assert json.loads((elsewhere / "case-002.json").read_text())["expect"] == {"status": 400}
