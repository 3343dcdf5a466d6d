"""Webhook case files: a webhook's folder, its case files and the requests they describe.

A folder per webhook: `template.j2`, an optional `webhook.json`, and `cases/*.json`, each
`{"request": {...}, "expect": {...}}`. A request file (a case's `request`, `hooklab render
--request`) describes a request by its method, path, query, headers and a body given as `body`,
`json` or `form`. Reading checks each file and names the one that is wrong.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Container, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from hooklab.core.credentials import MASK, looks_secret, masked_query
from hooklab.core.errors import InvalidInput
from hooklab.core.request import HookRequest, is_json_type, parse_form, read_json
from hooklab.core.webhooks import Webhook

TEMPLATE_FILE = "template.j2"
SETTINGS_FILE = "webhook.json"
CASES_DIR = "cases"
REQUEST_KEYS = ("method", "path", "query", "headers", "body", "json", "form")
SETTINGS_KEYS = ("description", "enabled", "signature_preset", "signature_secret")
# The headers a request file leaves to the request it builds: the length of its body.
DERIVED_HEADERS = frozenset({"content-length"})
CASE_SLUG = "case"


class CaseError(InvalidInput):
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
