"""The README and the docs site say what is true: the site builds strictly, every code block
runs (Python in-process, IPython in a real kernel), every `hooklab` command shown parses, and
the command line's reference is the parser's own."""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from kernel_support import fresh_kernel

import hooklab
from hooklab.cli import reference
from hooklab.cli.app import build_parser

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = ROOT / "docs"
PAGES = [README, *sorted(DOCS.glob("*.md"))]
WRITTEN_FOR_USERS = [*PAGES, ROOT / "CONTRIBUTING.md", ROOT / "benchmarks" / "README.md"]

# A fenced block, and the `<!-- not run: why -->` line that may stand just before it.
FENCE = re.compile(
    r"^(?P<skip><!-- not run: [^\n]*-->\n)?```(?P<lang>[\w-]*)[^\n]*\n(?P<code>.*?)^```$",
    re.M | re.S,
)
# Words that mean something only to the people who made hooklab.
INTERNAL = re.compile(r"\bissue \d|\bSPEC \d|OWNER/REPO|\.\./shared|/w[o]rk/|plugs the bridge")


def blocks(page: Path, language: str) -> list[str]:
    """The code of each block of `language` on the page that is meant to run, in order."""
    return [
        match["code"]
        for match in FENCE.finditer(page.read_text())
        if match["lang"] == language and not match["skip"]
    ]


def pages_with(language: str) -> list[Any]:
    return [pytest.param(page, id=page.name) for page in PAGES if blocks(page, language)]


def test_the_readme_is_a_front_door() -> None:
    text = README.read_text()
    assert len(text.splitlines()) <= 150
    # The set-up commands come first, unchanged.
    assert blocks(README, "sh")[0] == (
        "make lab    # install into .venv, then open JupyterLab on the quickstart notebook\n"
        "make test   # install into .venv, then run the whole test suite\n"
    )
    assert "pip install '.[lab]'" in text
    for page in ("notebook", "python-api", "cli", "server", "forwarding", "team"):
        assert f"(docs/{page}.md)" in text


@pytest.mark.parametrize("page", WRITTEN_FOR_USERS, ids=lambda page: page.name)
def test_pages_speak_to_users(page: Path) -> None:
    assert not INTERNAL.findall(page.read_text())


NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda path: path.name)
def test_notebooks_speak_to_users(notebook: Path) -> None:
    cells = json.loads(notebook.read_text())["cells"]
    prose = ["".join(cell["source"]) for cell in cells if cell["cell_type"] == "markdown"]
    assert not INTERNAL.findall("\n".join(prose))


def test_the_site_builds_strictly(tmp_path: Path) -> None:
    site = tmp_path / "site"
    built = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=ROOT,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert built.returncode == 0, built.stderr
    for page in DOCS.glob("*.md"):
        folder = site if page.stem == "index" else site / page.stem
        assert (folder / "index.html").exists(), page.name


def test_the_cli_reference_is_the_parsers_own() -> None:
    page = (DOCS / "cli.md").read_text()
    assert reference.replace_between_markers(page, reference.markdown()) == page, (
        "docs/cli.md differs from the command line: rewrite its reference with "
        "`python -m hooklab.cli.reference docs/cli.md`"
    )


def test_the_reference_has_every_command_and_option() -> None:
    text = reference.markdown()
    for option in ("--forward-to", "--idle-timeout", "--dedupe", "--max-examples", "--api-url"):
        assert f"`{option}`" in text
    for command in ("webhook create", "service-account delete", "prefect events", "cases run"):
        assert f"### `hooklab {command}`" in text


@pytest.mark.parametrize("page", pages_with("python"))
def test_the_python_blocks_run(page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOOKLAB_HOME", str(tmp_path / "home"))
    names: dict[str, Any] = {}
    with contextlib.redirect_stdout(io.StringIO()):
        for number, code in enumerate(blocks(page, "python"), 1):
            exec(compile(code, f"{page.name}, python block {number}", "exec"), names)
    for value in names.values():
        if isinstance(value, hooklab.Workspace):
            value.close()


def test_the_python_api_tour_says_what_happens(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    page = (DOCS / "python-api.md").read_text()
    tour = page.split("## A tour", 1)[1].split("\n## ", 1)[0]
    (code,) = re.findall(r"```python\n(.*?)```", tour, re.S)
    monkeypatch.chdir(tmp_path)
    names: dict[str, Any] = {}
    exec(compile(code, "python-api.md", "exec"), names)
    assert names["outcome"].status == 204
    assert names["bad"].status == 400
    assert names["bad"].error.startswith("Invalid JSON body: Expecting")
    ws = names["ws"]
    assert [r for r in ws.requests()["status"]] == [204, 400, 401, 204]
    assert ws.events()["failed"].tolist() == [False, True, True, False]
    assert names["key"] not in (tmp_path / "demo" / "hooklab.db").read_bytes().decode("latin-1")
    with pytest.raises(hooklab.TemplateError) as caught:
        ws.create_webhook("broken", '{\n  "event": "e",\n  "resource": {"id": "{{ body.x }"}\n}')
    assert str(caught.value) == "line 3: Template syntax error: unexpected '}'"
    ws.close()


def test_the_python_api_page_names_every_public_name() -> None:
    page = (DOCS / "python-api.md").read_text()
    table = page.split("## The public names", 1)[1]
    assert not [name for name in hooklab.__all__ if f"`{name}`" not in table]


@pytest.mark.parametrize("page", pages_with("ipython"))
def test_the_ipython_blocks_run_in_a_kernel(
    page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOOKLAB_HOME", str(tmp_path / "home"))
    shown = []
    with fresh_kernel(tmp_path) as kernel:
        for code in blocks(page, "ipython"):
            shown.append(kernel.run(code))  # a cell that raises fails the test here
    if page == README:
        assert shown[-2] == "204 model-update\n"
        assert "product.models.recs" in shown[-1]  # the events frame


COMMANDS = {
    name
    for action in build_parser()._subparsers._group_actions  # type: ignore[union-attr]
    for name in action.choices or ()
}


def commands_shown(page: Path) -> list[list[str]]:
    """The arguments of each `hooklab ...` command line in the page's shell blocks."""
    commands = []
    for code in blocks(page, "sh"):
        pending = ""
        for line in code.replace("\\\n", " ").splitlines():
            pending = f"{pending}\n{line}" if pending else line
            lexer = shlex.shlex(pending, posix=True, punctuation_chars=True)
            lexer.whitespace_split = True
            try:
                words = list(lexer)
            except ValueError:  # a quote still open: the command goes on on the next line
                continue
            pending = ""
            for i, word in enumerate(words[:-1]):
                program = word == "hooklab" or word.endswith("/bin/hooklab")
                if program and (words[i + 1] in COMMANDS or words[i + 1].startswith("--")):
                    argv = words[i + 1 :]
                    cut = [j for j, w in enumerate(argv) if re.fullmatch(r"[|&;<>()]+", w)]
                    commands.append(argv[: cut[0]] if cut else argv)
                    break
    return commands


def files_named(argv: list[str], folder: Path) -> None:
    """Write the template and request files a command names, so that it parses as it would."""
    for word in argv:
        path = folder / word.removeprefix("@")
        if word.endswith(".j2"):
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text('{"event": "e", "resource": {"prefect.resource.id": "r"}}')
        elif word.endswith(".json"):
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text('{"method": "POST", "json": {"model": "m"}}')


@pytest.mark.parametrize("page", [p for p in PAGES if commands_shown(p)], ids=lambda p: p.name)
def test_every_hooklab_command_shown_parses(
    page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    refused = []
    for argv in commands_shown(page):
        files_named(argv, tmp_path)
        errors = io.StringIO()
        try:
            with contextlib.redirect_stderr(errors), contextlib.redirect_stdout(io.StringIO()):
                build_parser().parse_args(argv)
        except SystemExit as exit:
            if exit.code != 0:
                refused.append(f"hooklab {shlex.join(argv)}: {errors.getvalue().strip()}")
    assert not refused
