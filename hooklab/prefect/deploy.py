"""Taking webhooks to Prefect Cloud and back: export formats, push (create or update by name),
pull (import into a local workspace).

A webhook here is the management API's JSON (`Webhook.to_api`, the shape Prefect Cloud's API
answers with). Push and pull talk to anything with the webhook calls of that API: a Prefect
Cloud workspace, a `hooklab serve`, or the local home (`hooklab.cli.backend.LocalApi`).

>>> hook = {"name": "models", "description": "", "enabled": True, "template": '{"event": "x"}'}
>>> print(prefect_cli_line(hook))
prefect cloud webhook create models --description '' --template '{"event": "x"}'
"""

from __future__ import annotations

import json
import re
import shlex
import urllib.parse
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from hooklab.core.errors import AmbiguousWebhook, InvalidInput

__all__ = [
    "EXPORT_FORMATS",
    "Pulled",
    "WebhookApi",
    "export_webhook",
    "hcl_heredoc",
    "hcl_string",
    "prefect_cli_line",
    "pull_webhooks",
    "push_webhook",
    "terraform_block",
    "terraform_name",
    "webhook_url",
]


class WebhookApi(Protocol):
    """The webhook calls of Prefect Cloud's API that push and pull need."""

    def list_webhooks(self) -> list[dict[str, Any]]: ...
    def create_webhook(
        self,
        name: str,
        template: str,
        description: str = "",
        service_account_id: str | None = None,
    ) -> dict[str, Any]: ...
    def replace_webhook(
        self, webhook_id: str, name: str, description: str, template: str
    ) -> None: ...
    def patch_webhook(self, webhook_id: str, changes: dict[str, Any]) -> None: ...
    def read_webhook(self, webhook_id: str) -> dict[str, Any]: ...


# Exports


# What `POST /webhooks/` takes: the webhook's own fields, none of the ids and times of the
# workspace it comes from (a service account's id names an account of that workspace only).
CREATE_FIELDS = ("name", "description", "enabled", "template")


def export_json(hook: dict[str, Any]) -> str:
    """The body that creates this webhook through Prefect's API (`POST /webhooks/`): its name,
    description, enabled and template, without the ids, slug and times of this workspace."""
    return json.dumps({key: hook[key] for key in CREATE_FIELDS if key in hook}, indent=2)


def prefect_cli_line(hook: dict[str, Any]) -> str:
    """A `prefect cloud webhook create` line that a POSIX shell passes to Prefect unchanged:
    every argument quoted with `shlex.quote` (newlines stay inside the quotes)."""
    words = [
        "prefect", "cloud", "webhook", "create", hook["name"],
        "--description", hook.get("description") or "",
        "--template", hook["template"],
    ]  # fmt: skip
    return " ".join(shlex.quote(word) for word in words)


_HCL_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}
_HCL_SPECIAL = re.compile(r'["\\\n\r\t]|[$%]\{|[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]')


def hcl_string(text: str) -> str:
    """`text` as a quoted HCL (Terraform) string: quotes, backslashes and control characters
    escaped, and `${` / `%{` doubled so Terraform reads them as text, not interpolation.

    >>> print(hcl_string('say "${name}"\\n'))
    "say \\"$${name}\\"\\n"
    """

    def escape(match: re.Match[str]) -> str:
        found = match.group(0)
        if found in _HCL_ESCAPES:
            return _HCL_ESCAPES[found]
        if found.endswith("{"):
            return found[0] + found
        return f"\\u{ord(found):04x}"

    return '"' + _HCL_SPECIAL.sub(escape, text) + '"'


def terraform_name(name: str) -> str:
    """A Terraform resource name for a webhook name: letters, digits, `_` and `-`, starting
    with a letter or `_`.

    >>> terraform_name("Model updates (v2)")
    'model_updates_v2'
    >>> terraform_name("2024 orders")
    'webhook_2024_orders'
    """
    slug = re.sub(r"[^a-z0-9_-]+", "_", name.lower()).strip("_-")
    if not slug:
        return "webhook"
    return slug if slug[0].isalpha() else f"webhook_{slug}"


def hcl_heredoc(text: str) -> str | None:
    """`text` as an HCL heredoc, line for line as a reviewer reads it (`${` and `%{` doubled,
    as in any HCL template), in `chomp(...)` when it does not end with a line break; None for
    text a heredoc cannot hold as it is (a carriage return or another control character).

    >>> print(hcl_heredoc('{\n  "event": "${x}"\n}'))
    chomp(<<EOT
    {
      "event": "$${x}"
    }
    EOT
    )
    """
    if _HEREDOC_UNSAFE.search(text):
        return None
    lines = text.split("\n")
    closing = "EOT"
    while closing in (line.strip() for line in lines):
        closing += "_"
    body = re.sub(r"([$%])\{", r"\1\1{", text)
    if text.endswith("\n"):
        return f"<<{closing}\n{body}{closing}\n"
    return f"chomp(<<{closing}\n{body}\n{closing}\n)"


_HEREDOC_UNSAFE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def terraform_block(hook: dict[str, Any]) -> str:
    """A `resource "prefect_webhook"` block for the Prefect provider: name, description,
    enabled, template (as a heredoc, so a review reads it as written), and service_account_id
    when the webhook has one."""
    template = hook["template"]
    fields: list[tuple[str, str]] = [
        ("name", hcl_string(hook["name"])),
        ("description", hcl_string(hook.get("description") or "")),
        ("enabled", "true" if hook.get("enabled", True) else "false"),
        ("template", hcl_heredoc(template) or hcl_string(template)),
    ]
    if hook.get("service_account_id"):
        fields.append(("service_account_id", hcl_string(str(hook["service_account_id"]))))
    width = max(len(key) for key, _ in fields)
    body = "\n".join(f"  {key.ljust(width)} = {value}".rstrip("\n") for key, value in fields)
    return f'resource "prefect_webhook" "{terraform_name(hook["name"])}" {{\n{body}\n}}'


EXPORT_FORMATS: dict[str, Callable[[dict[str, Any]], str]] = {
    "json": export_json,
    "prefect-cli": prefect_cli_line,
    "terraform": terraform_block,
}


def export_webhook(hook: dict[str, Any], format: str) -> str:
    """The webhook in one of `EXPORT_FORMATS`."""
    try:
        return EXPORT_FORMATS[format](hook)
    except KeyError:
        raise InvalidInput(
            f"unknown export format {format!r}: use {', '.join(EXPORT_FORMATS)}"
        ) from None


# Push and pull


def webhook_url(api_url: str, slug: str) -> str:
    """Where a webhook of the API at `api_url` receives: `/hooks/<slug>` on the API's host, as
    on Prefect Cloud (`https://api.prefect.cloud/hooks/...`) and on `hooklab serve`.

    >>> webhook_url("https://api.prefect.cloud/api/accounts/a/workspaces/w", "AbC")
    'https://api.prefect.cloud/hooks/AbC'
    """
    parts = urllib.parse.urlsplit(api_url)
    return f"{parts.scheme}://{parts.netloc}/hooks/{slug}"


def _by_name(hooks: Iterable[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for hook in hooks:
        found.setdefault(str(hook["name"]), []).append(hook)
    return found


def _one(name: str, found: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The webhook of that name, None for none; several are refused with their ids."""
    if len(found) > 1:
        raise AmbiguousWebhook(name, [str(hook["id"]) for hook in found])
    return found[0] if found else None


def _apply(api: WebhookApi, hook: dict[str, Any], existing: dict[str, Any] | None) -> str:
    """Create `hook` on `api`, or update `existing` to match it; returns the id there."""
    if existing is None:
        made = api.create_webhook(hook["name"], hook["template"], hook.get("description") or "")
        target = str(made["id"])
        if not hook.get("enabled", True):
            api.patch_webhook(target, {"enabled": False})
        return target
    target = str(existing["id"])
    api.replace_webhook(target, hook["name"], hook.get("description") or "", hook["template"])
    if bool(existing.get("enabled", True)) != bool(hook.get("enabled", True)):
        api.patch_webhook(target, {"enabled": bool(hook.get("enabled", True))})
    return target


def push_webhook(hook: dict[str, Any], remote: WebhookApi) -> tuple[dict[str, Any], bool]:
    """Create `hook` on `remote`, or update the one webhook there with its name (never a
    duplicate). Name, description, template and enabled go; ids, slugs and service accounts
    belong to each side. Returns the remote webhook and whether it was created."""
    existing = _one(hook["name"], _by_name(remote.list_webhooks()).get(hook["name"], []))
    target = _apply(remote, hook, existing)
    return remote.read_webhook(target), existing is None


@dataclass
class Pulled:
    """What a pull did to one remote webhook: `created`, `updated`, or `error` (its line)."""

    name: str
    local_id: str | None
    created: bool
    error: str | None = None


def pull_webhooks(
    remote: WebhookApi,
    local: WebhookApi,
    *,
    describe_error: Callable[[BaseException], str | None] = lambda exc: None,
) -> list[Pulled]:
    """Import every remote webhook's name, description, template and enabled flag into
    `local`: a local webhook of the same name is updated, the others are created. A name that
    several webhooks share (on either side) is refused before anything changes. A webhook the
    local side refuses (`describe_error` gives its line; None re-raises) is reported and the
    others still come."""
    remote_hooks = _by_name(remote.list_webhooks())
    local_hooks = _by_name(local.list_webhooks())
    plan = [
        (_one(name, found), _one(name, local_hooks.get(name, [])))
        for name, found in remote_hooks.items()
    ]
    results = []
    for hook, existing in plan:
        assert hook is not None
        try:
            local_id = _apply(local, hook, existing)
        except Exception as exc:
            line = describe_error(exc)
            if line is None:
                raise
            results.append(Pulled(hook["name"], None, existing is None, line))
            continue
        results.append(Pulled(hook["name"], local_id, existing is None))
    return results
