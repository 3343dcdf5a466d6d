"""What `%%webhook` shows: the URL, a curl command that sends what the template reads, and the
compatibility check."""

from __future__ import annotations

import json
import shlex
from html import escape
from typing import Any

from hooklab.core.webhooks import Webhook


class WebhookView:
    """What `%%webhook` shows: the URL, a curl command, and the compatibility check."""

    def __init__(self, hook: Webhook, verb: str, url: str | None) -> None:
        self.hook = hook
        self.verb = verb
        self.url = url

    def lines(self) -> list[str]:
        from hooklab.history.lint import check_lines, check_template

        lines = [f"webhook {self.hook.name!r} {self.verb}"]
        if self.url:
            lines += [f"URL: {self.url}", f"from a terminal: {curl_command(self.hook, self.url)}"]
            lines.append(f"from a cell: await hooklab.send({self.url!r}, ...)")
        else:
            lines.append("no receiver running in this kernel: `%hooklab serve` or `hooklab serve`")
        return lines + check_lines(check_template(self.hook.template))

    def __repr__(self) -> str:
        return "\n".join(self.lines())

    def _repr_html_(self) -> str:
        from hooklab.history.lint import check_template
        from hooklab.notebook.reprs import findings_html, webhook_html

        # The check first, where the eye lands, before the URL and the card.
        heading = f"<p>webhook <b>{escape(self.hook.name)}</b> {self.verb}</p>"
        heading += findings_html(check_template(self.hook.template))
        if self.url:
            heading += (
                f"<pre>{escape(curl_command(self.hook, self.url))}</pre>"
                f"<p>from a cell: <code>await hooklab.send({escape(repr(self.url))}, "
                "...)</code></p>"
            )
        return heading + webhook_html(self.hook, self.url, check=False)


def curl_command(hook: Webhook, url: str) -> str:
    """A curl command that sends the fields the template reads, with placeholder values."""
    from hooklab.history.lint import referenced_fields

    body_paths = [keys for root, keys in referenced_fields(hook.template) if root == "body"]
    headers = [keys[0] for root, keys in referenced_fields(hook.template) if root == "headers"]
    parts = ["curl", "-X", "POST", shlex.quote(url)]
    for name in headers:
        if isinstance(name, str) and name.lower() != "content-type":
            parts += ["-H", shlex.quote(f"{name}: example")]
    if body_paths and all(len(p) == 1 and isinstance(p[0], str) for p in body_paths):
        for (key,) in body_paths:
            parts += ["-d", shlex.quote(f"{key}=example")]
    elif body_paths:
        parts += [
            "-H",
            "'Content-Type: application/json'",
            "-d",
            shlex.quote(json.dumps(_sample(body_paths))),
        ]
    return " ".join(parts)


def _sample(paths: list[tuple[Any, ...]]) -> dict[str, Any]:
    sample: dict[str, Any] = {}
    for keys in paths:
        node = sample
        names = [k for k in keys if isinstance(k, str)]
        for key in names[:-1]:
            child = node.setdefault(key, {})
            if not isinstance(child, dict):
                break
            node = child
        else:
            if names:
                node.setdefault(names[-1], "example")
    return sample
