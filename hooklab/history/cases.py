"""Webhook cases (SPEC 13): a template's requests and their expected outcomes, in files.

A folder per webhook: `template.j2`, an optional `webhook.json`, and `cases/*.json`, each
`{"request": {...}, "expect": {...}}`. Cases run through the receiver's own path
(`Workspace.process`, in a workspace held in memory), so a case that passes is a request the
receiver answers the same way. The pytest plugin, `hooklab cases run` and the notebook read,
run, compare and rewrite cases here.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Container, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hooklab.core.credentials import MASK, looks_secret, masked_query
from hooklab.core.outcome import Outcome
from hooklab.core.request import HookRequest, is_json_type, parse_form, read_json
from hooklab.core.webhooks import Webhook
from hooklab.history.writes import Record, check_folder, write_file

if TYPE_CHECKING:
    pass

TEMPLATE_FILE = "template.j2"
SETTINGS_FILE = "webhook.json"
CASES_DIR = "cases"
REQUEST_KEYS = ("method", "path", "query", "headers", "body", "json", "form")
SETTINGS_KEYS = ("description", "enabled", "signature_preset", "signature_secret")
# Fields an expectation leaves out unless it gives them: they differ on every delivery.
UNSTABLE_FIELDS = ("id", "occurred", "received")
# The headers a request file leaves to the request it builds: the length of its body.
DERIVED_HEADERS = frozenset({"content-length"})
CASE_SLUG = "case"


class CaseError(ValueError):
    """A case folder or file that cannot be read: one line that names the file."""


def request_from_spec(spec: Any, where: str) -> HookRequest:
    """The request a request file describes (`hooklab render --request`, a case's `request`).

    >>> request_from_spec({"json": {"qty": 2}}, "case.json").body
    b'{"qty":2}'
    """
    if not isinstance(spec, dict):
        raise CaseError(f"{where}: the request must be a JSON object")
    unknown = sorted(set(spec) - set(REQUEST_KEYS))
    if unknown:
        raise CaseError(
            f"{where} has unknown keys {', '.join(unknown)}; use {', '.join(REQUEST_KEYS)}"
        )
    if sum(key in spec for key in ("body", "json", "form")) > 1:
        raise CaseError(f"{where}: give only one of body, json and form")
    try:
        return HookRequest.fake(
            method=str(spec.get("method", "POST")),
            path=str(spec.get("path", "/hooks/render")),
            headers={str(k): str(v) for k, v in dict(spec.get("headers") or {}).items()},
            json=spec.get("json"),
            form=spec.get("form"),
            body=spec.get("body"),
            query=spec.get("query") or "",
        )
    except (TypeError, ValueError, AttributeError) as exc:
        raise CaseError(f"{where}: {exc}") from None


def spec_from_request(
    request: HookRequest,
    *,
    keep: Container[str] | None = None,
    masked: bool = False,
) -> dict[str, Any]:
    """A captured request as a request file: its body as `json` or `form` where the template
    would read it so, its headers but the credentials hooklab never stores and Content-Length,
    no path (the slug).

    `keep`: only the headers named in it (any spelling). `masked`: secret-looking header and
    query values written as `REDACTED` (`hooklab.core.credentials`), for a file to commit.
    """
    spec: dict[str, Any] = {"method": request.method}
    if request.query:
        spec["query"] = masked_query(request.query) if masked else request.query
    headers = {
        name: MASK if masked and looks_secret(name) else value
        for name, value in request.visible_headers.stored().items()
        if name.lower() not in DERIVED_HEADERS and (keep is None or name in keep)
    }
    if headers:
        spec["headers"] = headers
    content_type = request.content_type
    text = request.body.decode("utf-8", errors="replace")
    if not request.body:
        return spec
    if is_json_type(content_type):
        try:
            spec["json"] = read_json(text)
            return spec
        except ValueError:
            pass  # written as the text it is
    if content_type == "application/x-www-form-urlencoded":
        form = parse_form(text)
        if HookRequest.fake(form=form).body == request.body:
            spec["form"] = form
            return spec
    spec["body"] = text
    return spec


@dataclass(frozen=True)
class Case:
    """One case file: the request it sends and what it expects."""

    path: Path
    spec: dict[str, Any]
    expect: dict[str, Any]

    @property
    def name(self) -> str:
        return self.path.stem

    @property
    def request(self) -> HookRequest:
        return request_from_spec(self.spec, str(self.path))


def read_case(path: Path) -> Case:
    """A case file, checked; a `CaseError` naming the file otherwise."""
    try:
        data = read_json(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise CaseError(f"{path}: cannot be read: {exc}") from None
    except ValueError as exc:
        raise CaseError(f"{path}: not JSON: {exc}") from None
    if not isinstance(data, dict) or "request" not in data:
        raise CaseError(f'{path}: a case is {{"request": {{...}}, "expect": {{...}}}}')
    unknown = sorted(set(data) - {"request", "expect"})
    if unknown:
        raise CaseError(f"{path}: unknown keys {', '.join(unknown)}; use request and expect")
    expect = data.get("expect", {})
    if not isinstance(expect, dict):
        raise CaseError(f"{path}: expect must be a JSON object")
    if "events" in expect and not (
        isinstance(expect["events"], list) and all(isinstance(e, dict) for e in expect["events"])
    ):
        raise CaseError(f"{path}: expect.events must be a list of objects")
    if "error" in expect and not isinstance(expect["error"], str):
        raise CaseError(f"{path}: expect.error must be text")
    if "status" in expect and not isinstance(expect["status"], int):
        raise CaseError(f"{path}: expect.status must be a number")
    case = Case(path, data["request"], expect)
    case.request  # noqa: B018 -- checks the request now, naming the file
    return case


def case_text(spec: Mapping[str, Any], expect: Mapping[str, Any]) -> str:
    """A case file's text: its request and what it expects, as JSON people read and diff."""
    return json.dumps({"request": spec, "expect": expect}, indent=2, ensure_ascii=False) + "\n"


@dataclass
class CaseFolder:
    """A webhook's folder: its template, its settings and where its cases are."""

    path: Path
    template: str
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.path.name

    def case_files(self) -> list[Path]:
        return sorted((self.path / CASES_DIR).glob("*.json"))

    def webhook(self) -> Webhook:
        """The webhook the cases run against: a stable id, so the events are the same each run."""
        epoch = datetime(2000, 1, 1).astimezone()
        hook_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"hooklab-case:{self.name}"))
        return Webhook(
            hook_id,
            self.name,
            self.template,
            CASE_SLUG,
            epoch,
            epoch,
            description=str(self.settings.get("description", "")),
            enabled=bool(self.settings.get("enabled", True)),
            signature_preset=self.settings.get("signature_preset"),
            signature_secret=self.settings.get("signature_secret"),
        )


def is_case_folder(path: Path) -> bool:
    return (path / TEMPLATE_FILE).is_file() and (path / CASES_DIR).is_dir()


def read_folder(path: Path) -> CaseFolder:
    """A webhook folder; a `CaseError` naming the file that is wrong."""
    template_path = path / TEMPLATE_FILE
    try:
        template = template_path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CaseError(f"{template_path}: cannot be read: {exc}") from None
    settings: dict[str, Any] = {}
    settings_path = path / SETTINGS_FILE
    if settings_path.is_file():
        try:
            settings = read_json(settings_path.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise CaseError(f"{settings_path}: not JSON: {exc}") from None
        if not isinstance(settings, dict):
            raise CaseError(f"{settings_path}: must hold a JSON object")
        unknown = sorted(set(settings) - set(SETTINGS_KEYS))
        if unknown:
            raise CaseError(
                f"{settings_path}: unknown keys {', '.join(unknown)}; "
                f"use {', '.join(SETTINGS_KEYS)}"
            )
    return CaseFolder(path, template, settings)


def find_folders(root: Path) -> list[Path]:
    """The webhook folders at or under `root`, in name order."""
    if is_case_folder(root):
        return [root]
    return sorted(p.parent for p in root.rglob(TEMPLATE_FILE) if is_case_folder(p.parent))


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
class Difference:
    """One field whose value differs from what the case expects."""

    field: str
    expected: Any
    actual: Any

    def __str__(self) -> str:
        return f"{self.field}: expected {_show(self.expected)}, got {_show(self.actual)}"


_ABSENT: Any = type("Absent", (), {"__repr__": lambda self: "(absent)"})()


def _show(value: Any) -> str:
    if value is _ABSENT:
        return "(absent)"
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 200 else text[:197] + "..."


def event_fields(outcome: Outcome) -> list[dict[str, Any]]:
    """The outcome's events as JSON, without the webhook's own related resource (its id is
    the workspace's, not the case's)."""
    found = []
    for event in outcome.events:
        data = event.model_dump(mode="json")
        related = data.get("related") or []
        if related and related[-1].get("prefect.resource.role") == "webhook":
            data["related"] = related[:-1]
        found.append(data)
    return found


def expectation(outcome: Outcome) -> dict[str, Any]:
    """What an outcome becomes as a case's `expect`: no ids or times, no empty fields."""
    if outcome.failed:
        # The character offset moves with any edit above it; line and column say enough.
        error = _CHAR_OFFSET.sub("", outcome.error or "")
        return {"status": outcome.status, "error": error}
    events = []
    for data in event_fields(outcome):
        kept = {k: v for k, v in data.items() if k not in UNSTABLE_FIELDS}
        if not kept.get("related"):
            kept.pop("related", None)
        if kept.get("follows") is None:
            kept.pop("follows", None)
        events.append(kept)
    return {"status": outcome.status, "events": events}


_CHAR_OFFSET = re.compile(r" \(char \d+\)$")


def compare(expect: Mapping[str, Any], outcome: Outcome) -> list[Difference]:
    """How an outcome differs from a case's `expect` (SPEC 13); empty when it passes."""
    found = []
    if "status" in expect and expect["status"] != outcome.status:
        found.append(Difference("status", expect["status"], outcome.status))
    if "error" in expect and (outcome.error is None or expect["error"] not in outcome.error):
        found.append(Difference("error", expect["error"], outcome.error))
    if "events" in expect:
        actual = event_fields(outcome) if not outcome.failed else []
        wanted = expect["events"]
        if len(wanted) != len(actual):
            found.append(Difference("events (count)", len(wanted), len(actual)))
        for number, (want, got) in enumerate(zip(wanted, actual, strict=False)):
            for key, value in want.items():
                found.extend(_differences(f"events[{number}].{key}", value, got.get(key, _ABSENT)))
    return found


def _differences(where: str, expected: Any, actual: Any) -> Iterator[Difference]:
    """Nested keys compared exactly, each differing leaf named by its path."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        for key in [*expected, *(k for k in actual if k not in expected)]:
            yield from _differences(
                f"{where}[{json.dumps(key)}]",
                expected.get(key, _ABSENT),
                actual.get(key, _ABSENT),
            )
    elif expected != actual or type(expected) is not type(actual):
        yield Difference(where, expected, actual)


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
    return Rewrite(path, before, text)


def outcome_shape(outcome: Outcome) -> Any:
    """What `--dedupe` compares: the status, the failure's reason, the events' names and the
    shape of their fields (keys and value types, not the values)."""
    if outcome.failed:
        return (outcome.status, outcome.reason)
    events = expectation(outcome)["events"]
    return (outcome.status, tuple((data.get("event"), _shape(data)) for data in events))


def _shape(value: Any) -> Any:
    if isinstance(value, dict):
        return tuple((key, _shape(item)) for key, item in sorted(value.items()))
    if isinstance(value, list):
        return ("list", tuple(sorted({repr(_shape(item)) for item in value})))
    return type(value).__name__


def summary(results: Sequence[CaseResult]) -> str:
    failed = sum(not result.passed for result in results)
    return f"{len(results)} cases: {len(results) - failed} passed, {failed} failed"
