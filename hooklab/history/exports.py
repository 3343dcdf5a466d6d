"""`hooklab cases export`: a webhook's captured requests written as cases in a person's
repository, without losing what the person wrote there and without leaking a secret.

What an exported case carries: the request's method, query and body, and only the headers the
template reads (`headers['X']`, `headers.get('X')`, the `ce-` headers for `from_cloud_event`, or
all of them when it uses the mapping whole), the content type, and those the folder's signature
preset checks; not the sender's `Host`, `User-Agent` and the like. Secret-looking header and
query values are written as `REDACTED`, and the headers hooklab never stores are not there to
write (`hooklab.core.credentials`); one warning line says when the template reads one of them.

What it does to the folder: every file is written to a temporary file and renamed into place,
never through a link, and a folder that is a link is refused (`hooklab.history.writes`).
`webhook.json` is merged: settings a person added (a `signature_preset`, say) stay. A file the
last export wrote and nobody changed since is replaced freely, and the stale cases of that
export are removed; any other file that the export would replace or remove (a template or case a
person edited, a file not written by an export) stops the export before it writes anything,
unless `force`. Cases a person added under other names are left alone. The export says what it
wrote, kept and removed.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hooklab.core.credentials import HIDDEN_FROM_TEMPLATES, NEVER_STORED_HEADERS, looks_secret
from hooklab.core.signatures import SIGNATURE_HEADERS
from hooklab.history.casefiles import (
    CASES_DIR,
    SETTINGS_FILE,
    TEMPLATE_FILE,
    CaseError,
    CaseFolder,
    case_text,
    request_from_spec,
    spec_from_request,
)
from hooklab.history.cases import CaseRunner
from hooklab.history.expectations import expectation, outcome_shape
from hooklab.history.lint import HeadersRead, headers_read
from hooklab.history.writes import (
    Record,
    RefusedWrite,
    check_folder,
    read_text,
    remove_file,
    write_file,
)

if TYPE_CHECKING:
    from hooklab.workspace import Workspace

EXPORTED_CASE = re.compile(r"case-\d+\.json\Z")
SHOWN_NAMES = 4  # file names listed in a line of the summary before "and N more"


class ExportRefused(RefusedWrite, CaseError):
    """An export that would replace or remove what a person wrote: nothing was written."""


class ExportReport(list[Path]):
    """The case files an export wrote, in order, and beside them what it did to the folder:
    `written`, `unchanged`, `kept` (files it leaves as they are, with why), `removed` and
    `warnings`. `str()` says it all in a few lines."""

    def __init__(self, webhook: str, folder: Path, cases: list[Path]) -> None:
        super().__init__(cases)
        self.webhook = webhook
        self.folder = folder
        self.written: list[str] = []
        self.unchanged: list[str] = []
        self.kept: list[str] = []
        self.removed: list[str] = []
        self.warnings: list[str] = []

    def __str__(self) -> str:
        count = len(self)
        lines = [
            f"Wrote {count} case{'' if count == 1 else 's'} for {self.webhook} to {self.folder}"
        ]
        for label, names, why in (
            ("written", self.written, ""),
            ("unchanged", self.unchanged, ""),
            ("kept", self.kept, " (not written by an export: left as they are)"),
            ("removed", self.removed, " (stale cases of the last export)"),
        ):
            if names:
                lines.append(f"  {label}: {_listed(names)}{why}")
        lines += [f"warning: {warning}" for warning in self.warnings]
        return "\n".join(lines)


def _listed(names: list[str]) -> str:
    if len(names) <= SHOWN_NAMES:
        return ", ".join(names)
    return f"{', '.join(names[:SHOWN_NAMES])} and {len(names) - SHOWN_NAMES} more"


@dataclass
class _Plan:
    """The files an export means to write (name relative to the folder, and text) and remove."""

    files: dict[str, str] = field(default_factory=dict)
    remove: list[str] = field(default_factory=list)


def export_cases(
    workspace: Workspace,
    webhook: str,
    to: Path | str,
    *,
    since: datetime | str | None = None,
    until: datetime | str | None = None,
    limit: int | None = None,
    dedupe: bool = False,
    force: bool = False,
) -> ExportReport:
    """Write a webhook's captured requests as cases under `to`: `template.j2`, `webhook.json`
    and one case per request, expecting what the template produces now. Returns the case files
    (an `ExportReport`, which also says what else was written, kept and removed).

    Raises `ExportRefused`, having written nothing, when it would replace or remove a file that
    the last export did not write or someone changed since, unless `force`; `RefusedWrite` for
    a folder that is a link. Also `hooklab.export_cases(ws, webhook, to, ...)`.
    """
    hook = workspace.get_webhook(workspace.resolve_webhook(webhook))
    captured = workspace.captured(hook.id, since=since, until=until)
    if limit is not None:
        captured = captured[-limit:] if limit > 0 else []
    folder = Path(to)
    check_folder(folder)
    check_folder(folder / CASES_DIR)
    record = Record.read(folder)
    settings, settings_text = _merged_settings(
        folder, record, {"description": hook.description}, force
    )
    plan = _Plan({TEMPLATE_FILE: hook.template, SETTINGS_FILE: settings_text})

    read = headers_read(hook.template)
    preset = settings.get("signature_preset")
    checked = set(SIGNATURE_HEADERS.get(preset, ())) if isinstance(preset, str) else set()
    keep = _Kept(read, checked)
    runner = CaseRunner(CaseFolder(folder, hook.template, settings))
    cases: list[str] = []
    shapes: set[Any] = set()
    masked: set[str] = set()
    try:
        for stored in captured:
            spec = spec_from_request(stored.request, keep=keep, masked=True)
            masked |= _masked(stored.request.headers, keep)
            outcome = runner.outcome(request_from_spec(spec, "a captured request"))
            if dedupe:
                shape = outcome_shape(outcome)
                if shape in shapes:
                    continue
                shapes.add(shape)
            name = f"{CASES_DIR}/case-{len(cases) + 1:03d}.json"
            plan.files[name] = case_text(spec, expectation(outcome))
            cases.append(name)
    finally:
        runner.close()

    report = ExportReport(hook.name, folder, [folder / name for name in cases])
    _decide(folder, record, plan, report, force)
    _warn(report, read, masked)
    _carry_out(folder, plan)
    return report


class _Kept:
    """The headers an exported case keeps: those the template reads, the content type, and
    those the folder's signature preset checks."""

    def __init__(self, read: HeadersRead, checked: set[str]) -> None:
        self.read = read
        self.checked = checked | {"content-type"}

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and (name.lower() in self.checked or name in self.read)


def _masked(headers: tuple[tuple[str, str], ...], keep: _Kept) -> set[str]:
    """The headers of a request that its case keeps, but with the value masked."""
    return {name for name, _ in headers if name in keep and looks_secret(name)}


def _merged_settings(
    folder: Path, record: Record, exported: dict[str, Any], force: bool
) -> tuple[dict[str, Any], str]:
    """`webhook.json` as it will be, and its text: what the export knows (the description)
    with what a person set. Where both set a key, the person's value stays, unless the file is
    as the last export wrote it; a file that already says it all is left as it is written."""
    exported = {key: value for key, value in exported.items() if value}
    text = read_text(folder / SETTINGS_FILE)
    if text is None:
        return exported, _settings_text(exported)
    try:
        existing = json.loads(text)
    except ValueError:
        existing = None
    if not isinstance(existing, dict):
        if force:
            return exported, _settings_text(exported)
        raise ExportRefused(
            f"Nothing exported: {folder / SETTINGS_FILE} does not hold a JSON object, so its "
            "settings cannot be merged; fix it, or use --force to replace it"
        )
    if record.unchanged(SETTINGS_FILE):
        merged = {**existing, **exported}
    else:
        merged = {**exported, **existing}
    return merged, text if merged == existing else _settings_text(merged)


def _settings_text(settings: dict[str, Any]) -> str:
    return json.dumps(settings, indent=2, ensure_ascii=False) + "\n"


def _decide(folder: Path, record: Record, plan: _Plan, report: ExportReport, force: bool) -> None:
    """What to write, leave and remove; refuses (before anything is written) to replace or
    remove what a person wrote, unless `force`."""
    refused = []
    for name, text in plan.files.items():
        path = folder / name
        current = read_text(path)
        absent = not path.exists() and not path.is_symlink()
        # webhook.json is merged: what a person set in it is in `text` already.
        merged = name == SETTINGS_FILE and current is not None
        if current == text and not path.is_symlink():
            report.unchanged.append(name)
        elif absent or merged or record.unchanged(name) or force:
            report.written.append(name)
        else:
            refused.append(name)
    planned = set(plan.files)
    for name in record.names():
        if name in planned or not name.startswith(f"{CASES_DIR}/"):
            continue
        if not (folder / name).exists() and not (folder / name).is_symlink():
            continue
        if record.unchanged(name) or force:
            plan.remove.append(name)
        else:
            refused.append(name)
    recorded = set(record.names())
    cases = folder / CASES_DIR
    if cases.is_dir():
        for path in sorted(cases.glob("*.json")):
            name = f"{CASES_DIR}/{path.name}"
            if name not in planned and name not in recorded:
                report.kept.append(name)
    if refused:
        raise ExportRefused(
            f"Nothing exported: {_listed(refused)} in {folder} would be replaced or removed, "
            "but the last export did not write them or they were changed since; use --force to "
            "replace them"
        )
    report.removed[:] = plan.remove


def _warn(report: ExportReport, read: HeadersRead, masked: set[str]) -> None:
    """One line when the template reads a header the cases cannot carry as it was sent."""
    never = sorted((read.names & NEVER_STORED_HEADERS) - HIDDEN_FROM_TEMPLATES)
    parts = [f"{name} (never stored: left out)" for name in never]
    parts += [f"{name} (written as REDACTED)" for name in sorted(masked, key=str.lower)]
    if parts:
        report.warnings.append(
            f"the template reads headers these cases cannot carry as they were sent: "
            f"{', '.join(parts)}; their outcomes may differ from the requests'"
        )


def _carry_out(folder: Path, plan: _Plan) -> None:
    """Write the plan; the folder's record then lists exactly the files this export wrote."""
    (folder / CASES_DIR).mkdir(parents=True, exist_ok=True)
    record = Record(folder)
    for name, text in plan.files.items():
        if read_text(folder / name) != text or (folder / name).is_symlink():
            write_file(folder / name, text)
        record.written(name, text)
    for name in plan.remove:
        remove_file(folder / name)
    record.save()
