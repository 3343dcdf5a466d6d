"""The pytest plugin (entry point `pytest11`): each `webhooks/<name>/cases/*.json` beside a
`template.j2` is a test, run through the receiver's own path (SPEC 13).

A failure reads as the fields that differ, with both values, the rendered text and the template
line, not a traceback. `pytest --hooklab-update` rewrites the failing cases' expectations from
what their templates produce now. No other JSON file is collected.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from hooklab.history.cases import CaseResult, CaseRunner, Rewrite

UPDATE_OPTION = "--hooklab-update"
_RUNNERS = pytest.StashKey[dict[Path, "CaseRunner"]]()
_REWRITES = pytest.StashKey[list["Rewrite"]]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("hooklab", "hooklab webhook cases")
    group.addoption(
        UPDATE_OPTION,
        action="store_true",
        default=False,
        help="rewrite failing webhook cases' expectations from what the templates produce now",
    )


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> CaseFile | None:
    if file_path.suffix != ".json" or file_path.parent.name != "cases":
        return None
    from hooklab.history.casefiles import is_case_folder

    if not is_case_folder(file_path.parent.parent):
        return None
    found: CaseFile = CaseFile.from_parent(parent, path=file_path)
    return found


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    """After `--hooklab-update`, which case files it rewrote and how: a bug taken as the
    expectation is seen here, before it is committed."""
    if not config.getoption(UPDATE_OPTION):
        return
    from hooklab.history.casereport import rewrites_report

    lines = rewrites_report(config.stash.get(_REWRITES, []))
    terminalreporter.write_sep("=", "hooklab --hooklab-update")
    for line in lines:
        terminalreporter.write_line(line)


def pytest_unconfigure(config: pytest.Config) -> None:
    for runner in config.stash.get(_RUNNERS, {}).values():
        runner.close()


class CaseFile(pytest.File):
    """A case file: one test."""

    def collect(self) -> list[CaseItem]:
        return [CaseItem.from_parent(self, name=self.path.stem)]


class CaseFailed(Exception):
    def __init__(self, result: CaseResult) -> None:
        from hooklab.history.casereport import case_report

        super().__init__(case_report(result))
        self.result = result


class CaseItem(pytest.Item):
    """One case, run as the receiver would answer its request."""

    def runtest(self) -> None:
        from hooklab.history.casefiles import read_case
        from hooklab.history.cases import update_case

        case = read_case(self.path)
        result = self._runner().run(case)
        if result.passed:
            return
        if self.config.getoption(UPDATE_OPTION):
            self.config.stash.setdefault(_REWRITES, []).append(update_case(result))
            return
        raise CaseFailed(result)

    def _runner(self) -> CaseRunner:
        from hooklab.history.casefiles import read_folder
        from hooklab.history.cases import CaseRunner

        runners = self.config.stash.setdefault(_RUNNERS, {})
        folder = self.path.parent.parent
        if folder not in runners:
            runners[folder] = CaseRunner(read_folder(folder))
        return runners[folder]

    def repr_failure(
        self,
        excinfo: pytest.ExceptionInfo[BaseException],
        style: Any = None,
    ) -> str | Any:
        from hooklab.history.casefiles import CaseError
        from hooklab.history.writes import RefusedWrite

        if isinstance(excinfo.value, CaseFailed):
            return str(excinfo.value)
        if isinstance(excinfo.value, RefusedWrite):
            return f"not updated: {excinfo.value}"
        if isinstance(excinfo.value, CaseError):
            return f"malformed case: {excinfo.value}"
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, None, f"webhook case {self.path.parent.parent.name}/{self.name}"
