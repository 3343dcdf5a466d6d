"""Running webhook cases: each case's request through the receiver's own path
(`Workspace.process`, in a workspace held in memory), so a case that passes is a request the
receiver answers the same way; its outcome compared with what the case expects, and an
expectation rewritten from the outcome on request. The pytest plugin, `hooklab cases run` and
the notebook run cases here; the files are read by `hooklab.history.casefiles`.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from hooklab.core.outcome import Outcome
from hooklab.core.request import HookRequest
from hooklab.history.casefiles import (
    CASE_SLUG,
    Case,
    CaseError,
    CaseFolder,
    case_text,
    find_folders,
    read_case,
    read_folder,
)
from hooklab.history.expectations import Difference, compare, expectation
from hooklab.history.writes import Record, check_folder, write_file


class CaseRunner:
    """Runs a folder's cases through the receiver's path: `Workspace.process` on the folder's
    webhook, in a workspace held in memory (its signature and enabled checks included)."""

    def __init__(self, folder: CaseFolder) -> None:
        from hooklab.workspace import Workspace

        self.folder = folder
        self.webhook = folder.webhook()
        counter = iter(range(1, 1 << 62))
        self.workspace = Workspace(":memory:", new_id=lambda: uuid.UUID(int=next(counter)))
        self.workspace.import_webhook(self.webhook)  # as stored, even if it fails to compile
        self._missing: dict[str, str] | None = None

    def outcome(self, request: HookRequest) -> Outcome:
        return self.workspace.process(CASE_SLUG, request)

    def run(self, case: Case) -> CaseResult:
        outcome = self.outcome(case.request)
        differences = compare(case.expect, outcome)
        missing = self.missing_everywhere() if differences else {}
        return CaseResult(case, self.folder, outcome, differences, missing)

    def missing_everywhere(self) -> dict[str, str]:
        """The fields the template reads that every readable case of the folder lacks, each
        with a sentence saying so (read once, when a case first fails)."""
        if self._missing is None:
            from hooklab.history.lint import missing_from_all

            requests = []
            for path in self.folder.case_files():
                try:
                    requests.append(read_case(path).request)
                except CaseError:
                    continue  # its own test says what is wrong with it
            self._missing = {}
            for name, closest in missing_from_all(self.folder.template, requests).items():
                note = (
                    f"{name} is undefined in every case of {self.folder.name} "
                    f"({len(requests)} of {len(requests)}): it renders as empty text"
                )
                self._missing[name] = note + (f"; the requests have {closest}" if closest else "")
        return self._missing

    def close(self) -> None:
        self.workspace.close()


@dataclass(frozen=True)
class CaseResult:
    """A case run: the outcome it got, and how that differs from what it expects."""

    case: Case
    folder: CaseFolder
    outcome: Outcome
    differences: list[Difference]
    # Fields the template reads that no case of its folder has (a misspelt name, say), each
    # with a sentence that says so.
    missing_everywhere: Mapping[str, str] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return not self.differences


def run_cases(root: Path | str) -> list[CaseResult]:
    """Every case at or under `root`, run; a `CaseError` for a file that cannot be read."""
    results = []
    for path in find_folders(Path(root)):
        folder = read_folder(path)
        runner = CaseRunner(folder)
        try:
            results += [runner.run(read_case(file)) for file in folder.case_files()]
        finally:
            runner.close()
    return results


@dataclass(frozen=True)
class Rewrite:
    """A case file rewritten by an update: its text before (laid out as the update writes it,
    so that only what changed differs) and after."""

    path: Path
    before: str
    after: str
    # What the case's run says is likely a bug (a field undefined in every case), said again
    # with the rewrite so that it is not taken as the expectation unseen.
    warnings: tuple[str, ...] = ()


def update_case(result: CaseResult) -> Rewrite:
    """Rewrite a case's expectation from the outcome it got now, keeping its request: a new
    file renamed over the old one (a link is replaced, never written through; a `cases` folder
    that is a link is refused). A case the last export wrote, unchanged since, stays its own.
    Returns what changed, for the update to show."""
    path = result.case.path
    folder = result.folder.path
    check_folder(path.parent)
    record = Record.read(folder)
    name = path.relative_to(folder).as_posix() if path.is_relative_to(folder) else None
    ours = name is not None and record.unchanged(name)
    before = case_text(result.case.spec, result.case.expect)  # as written now, whatever layout
    text = case_text(result.case.spec, expectation(result.outcome))
    write_file(path, text)
    if ours and name is not None:
        record.written(name, text)
        record.save()
    return Rewrite(path, before, text, tuple(result.missing_everywhere.values()))


def summary(results: Sequence[CaseResult]) -> str:
    failed = sum(not result.passed for result in results)
    return f"{len(results)} cases: {len(results) - failed} passed, {failed} failed"
