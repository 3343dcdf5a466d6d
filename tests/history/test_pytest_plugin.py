"""The pytest plugin, run by pytest's own pytester over real case folders."""

from __future__ import annotations

import json

import pytest

pytest_plugins = ["pytester"]

TEMPLATE = """{
  "event": "order.{{ body.kind }}",
  "resource": {"prefect.resource.id": "order.{{ body.id }}"},
  "payload": {"qty": {{ body.qty }}}
}"""
PAID = {"json": {"kind": "paid", "id": 7, "qty": 2}}
EXPECT = {"status": 204, "events": [{"event": "order.paid", "payload": {"qty": 2}}]}


def case_folder(pytester: pytest.Pytester, **cases: object) -> None:
    folder = pytester.path / "webhooks" / "orders"
    (folder / "cases").mkdir(parents=True)
    (folder / "template.j2").write_text(TEMPLATE)
    for name, case in cases.items():
        text = case if isinstance(case, str) else json.dumps(case)
        (folder / "cases" / f"{name}.json").write_text(text)


def test_a_passing_case_is_one_passing_test(pytester: pytest.Pytester) -> None:
    case_folder(pytester, paid={"request": PAID, "expect": EXPECT})
    result = pytester.runpytest("-v")
    result.stdout.fnmatch_lines(["*webhooks/orders/cases/paid.json::paid PASSED*"])
    result.assert_outcomes(passed=1)


def test_a_failing_case_names_the_fields_with_both_values_not_a_traceback(
    pytester: pytest.Pytester,
) -> None:
    wrong = {"status": 204, "events": [{"event": "order.refund", "payload": {"qty": 3}}]}
    case_folder(pytester, paid={"request": PAID, "expect": wrong})
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            '*events[[]0[]].event: expected "order.refund", got "order.paid"',
            '*events[[]0[]].payload[[]"qty"[]]: expected 3, got 2',
            "*rendered:",
            '*"payload": {"qty": 2}',
        ]
    )
    assert "Traceback" not in result.stdout.str() and "def runtest" not in result.stdout.str()


def test_a_failing_render_quotes_the_template_line(pytester: pytest.Pytester) -> None:
    case_folder(pytester, noqty={"request": {"json": {"kind": "paid", "id": 1}}, "expect": EXPECT})
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*status: expected 204, got 400", '*4 |   "payload": {"qty": {{ body.qty }}}']
    )


def test_a_field_diff_names_its_template_line_and_a_field_no_case_has(
    pytester: pytest.Pytester,
) -> None:
    case_folder(pytester, paid={"request": PAID, "expect": EXPECT})
    folder = pytester.path / "webhooks" / "orders"
    (folder / "template.j2").write_text(TEMPLATE.replace("body.kind", "body.Kind"))
    other = {"request": {"json": {"kind": "paid", "id": 8, "qty": 1}}, "expect": {"status": 204}}
    (folder / "cases" / "other.json").write_text(json.dumps(other))
    result = pytester.runpytest()
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            '*events[[]0[]].event: expected "order.paid", got "order."',
            '*from template line 2 |   "event": "order.{{ body.Kind }}",',
            "*body.Kind is undefined in every case of orders (2 of 2): it renders as empty text;"
            " the requests have body.kind",
        ]
    )


def test_update_rewrites_failing_expectations_then_they_pass(pytester: pytest.Pytester) -> None:
    stale = {"status": 204, "events": [{"event": "order.old"}]}
    case_folder(pytester, paid={"request": PAID, "expect": stale}, same={"request": PAID})
    updated = pytester.runpytest("--hooklab-update", "-q")
    updated.assert_outcomes(passed=2)
    # what was rewritten, and how, is said: a bug is not taken as the expectation unseen
    updated.stdout.fnmatch_lines(
        [
            "*= hooklab --hooklab-update =*",
            "Rewrote 1 case file to what the templates produce now:",
            "  webhooks/orders/cases/paid.json",
            "    --- webhooks/orders/cases/paid.json (before)",
            "    +++ webhooks/orders/cases/paid.json (now)",
            '    -        "event": "order.old"',
            '    +        "event": "order.paid",',
        ]
    )
    assert "same.json" not in updated.stdout.str()  # a passing case is left as it is
    again = pytester.runpytest("--hooklab-update")
    again.stdout.fnmatch_lines(["No case file rewritten: every case passes as it is"])
    written = json.loads((pytester.path / "webhooks/orders/cases/paid.json").read_text())
    assert written["request"] == PAID
    (event,) = written["expect"]["events"]
    assert event["event"] == "order.paid" and not {"id", "occurred", "received"} & set(event)
    pytester.runpytest().assert_outcomes(passed=2)


def test_update_still_warns_of_a_field_undefined_in_every_case(pytester: pytest.Pytester) -> None:
    case_folder(pytester, paid={"request": PAID, "expect": EXPECT})
    folder = pytester.path / "webhooks" / "orders"
    (folder / "template.j2").write_text(TEMPLATE.replace("body.kind", "body.Kind"))
    updated = pytester.runpytest("--hooklab-update", "-q")
    updated.assert_outcomes(passed=1)
    updated.stdout.fnmatch_lines(
        [
            "  webhooks/orders/cases/paid.json",
            "    warning: body.Kind is undefined in every case of orders (1 of 1): it renders as"
            " empty text; the requests have body.kind",
            '    +        "event": "order.",',
        ]
    )


def test_a_malformed_case_is_a_one_line_error_naming_the_file(pytester: pytest.Pytester) -> None:
    case_folder(pytester, broken="{not json", paid={"request": PAID, "expect": EXPECT})
    result = pytester.runpytest()
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["malformed case: *webhooks/orders/cases/broken.json: not JSON*"])
    assert "Traceback" not in result.stdout.str()


def test_other_json_files_and_plain_tests_are_left_alone(pytester: pytest.Pytester) -> None:
    case_folder(pytester, paid={"request": PAID, "expect": EXPECT})
    (pytester.path / "data").mkdir()
    (pytester.path / "data" / "cases").mkdir()
    (pytester.path / "data" / "cases" / "x.json").write_text("{broken")
    (pytester.path / "package.json").write_text("{broken")
    pytester.makepyfile(test_plain="def test_plain():\n    assert True\n")
    result = pytester.runpytest("-v")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*test_plain.py::test_plain PASSED*", "*paid.json::paid PASSED*"])


def test_the_projects_own_collection_is_the_same_with_the_plugin() -> None:
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]

    def collected(*extra: str) -> list[str]:
        command = [sys.executable, "-m", "pytest", "--collect-only", "-q", *extra]
        found = subprocess.run(command, cwd=root, capture_output=True, text=True, timeout=300)
        return [line for line in found.stdout.splitlines() if "::" in line]

    with_plugin = collected()
    assert with_plugin and with_plugin == collected("-p", "no:hooklab")


def test_update_replaces_a_linked_case_never_its_target(pytester: pytest.Pytester) -> None:
    stale = {"status": 204, "events": [{"event": "order.old"}]}
    outside = pytester.path / "outside.json"
    outside.write_text(json.dumps({"request": PAID, "expect": stale}))
    case_folder(pytester)
    linked = pytester.path / "webhooks/orders/cases/paid.json"
    linked.symlink_to(outside)
    pytester.runpytest("--hooklab-update").assert_outcomes(passed=1)
    assert json.loads(outside.read_text())["expect"] == stale
    assert not linked.is_symlink()
    assert json.loads(linked.read_text())["expect"]["events"][0]["event"] == "order.paid"


def test_update_refuses_a_cases_folder_that_is_a_link(pytester: pytest.Pytester) -> None:
    stale = {"status": 204, "events": [{"event": "order.old"}]}
    elsewhere = pytester.path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "paid.json").write_text(json.dumps({"request": PAID, "expect": stale}))
    folder = pytester.path / "webhooks" / "orders"
    folder.mkdir(parents=True)
    (folder / "template.j2").write_text(TEMPLATE)
    (folder / "cases").symlink_to(elsewhere)
    result = pytester.runpytest("--hooklab-update")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["not updated: *cases is a symbolic link*"])
    assert json.loads((elsewhere / "paid.json").read_text())["expect"] == stale


def test_the_pytest_extra_brings_what_the_plugin_needs() -> None:
    """`pip install 'hooklab[pytest]'` in a templates repository: the plugin's one import
    beyond hooklab's own dependencies is pytest."""
    import ast
    import re
    from pathlib import Path

    import tomllib

    root = Path(__file__).resolve().parents[2]
    project = tomllib.loads((root / "pyproject.toml").read_text())["project"]
    extra = project["optional-dependencies"]["pytest"]
    names = {re.split(r"[<>=\[ ]", requirement)[0].lower() for requirement in extra}
    plugin = ast.parse((root / "hooklab/history/pytest_plugin.py").read_text())
    imported = {
        alias.name.split(".")[0]
        for node in ast.walk(plugin)
        if isinstance(node, ast.Import)
        for alias in node.names
    } | {
        node.module.split(".")[0]
        for node in ast.walk(plugin)
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0
    }
    assert imported - {"__future__", "pathlib", "typing", "hooklab"} == {"pytest"} <= names
    guide = (root / "docs/templates-under-test.md").read_text()
    assert re.search(r"pip install '[^' ]*hooklab[^' ]*\[pytest\]'", guide)  # from a clone
