"""Fixes for a failing template: a line rewritten, the whole template with every line of one
cause rewritten, and the check that a fix really renders valid events before it is suggested.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from hooklab.core.pipeline import render_events
from hooklab.core.request import HookRequest
from hooklab.core.skeleton import Expression, Placement, placements, quoted_string, tojson_fix
from hooklab.history.lint import writes_request_text
from hooklab.history.replay import draft_webhook

_TOJSON_AT_END = re.compile(r"\|\s*tojson\s*$")


def with_filters(line_text: str, source: str, filters: str) -> str | None:
    """The line with `{{ source }}` written `{{ source<filters> }}` (`source` in brackets when
    it is more than a name and its lookups)."""
    simple = re.fullmatch(r"[A-Za-z_][\w.]*(?:\[[^\[\]]*\])*", source)
    return with_source(line_text, source, (source if simple else f"({source})") + filters)


def with_source(line_text: str, source: str, new_source: str) -> str | None:
    """The line with `{{ source }}` written `{{ new_source }}`; None when it has no such `{{ }}`."""
    squeezed = re.sub(r"\s+", "", source)
    for found in re.finditer(r"\{\{-?(.*?)-?\}\}", line_text):
        if re.sub(r"\s+", "", found.group(1)) == squeezed:
            before, after = line_text[: found.start()], line_text[found.end() :]
            return f"{before}{{{{ {new_source} }}}}{after}"
    return None


def truncated(line_text: str, placement: Placement, limit: int) -> str | None:
    """The line with the value `placement` writes cut to `limit` characters before tojson
    writes it: the whole JSON string when the expression is inside one, and as text first, so
    that an object or a list is cut too (slicing one fails in Jinja).

    >>> from hooklab.core.skeleton import placements
    >>> line = '{"event": "shop.order.{{ body.id }}"}'
    >>> truncated(line, placements(line)[0], 200)
    '{"event": {{ ("shop.order." ~ body.id)[:200]|tojson }}}'
    """
    expression = placement.expression
    if placement.place == "string":
        found = quoted_string(line_text, expression)
        if found is None:
            return None
        start, end, replacement = found
        inner = _TOJSON_AT_END.sub("", replacement[3:-3])
        text = inner if inner.startswith("(") and inner.endswith(")") else f"({inner})"
        return f"{line_text[:start]}{{{{ {text}[:{limit}]|tojson }}}}{line_text[end:]}"
    inner = _TOJSON_AT_END.sub("", expression.source)
    return with_source(line_text, expression.source, f"({inner}|string)[:{limit}]|tojson")


_CUT_AFTER_TOJSON = re.compile(r"\((.*)\|\s*tojson\s*\)\s*(\[[^\[\]]*\])")


def cut_after_tojson(source: str) -> str | None:
    """For an expression that cuts tojson's output (`((x)|tojson)[:200]`), the same cut made
    before tojson, on the value as text (so that an object or a list is cut too); None for
    any other expression.

    >>> cut_after_tojson('(("a." ~ body.id)|tojson)[:200]')
    '(("a." ~ body.id)|string)[:200]|tojson'
    """
    found = _CUT_AFTER_TOJSON.fullmatch(source)
    if found is None:
        return None
    cut = re.sub(r"\s+", "", found.group(2))
    return f"({found.group(1)}|string){cut}|tojson"


def with_line(template: str, line: int, fixed: str) -> str:
    """The template with its line `line` written `fixed` (kept at the line's indent)."""
    lines = template.splitlines()
    old = lines[line - 1]
    lines[line - 1] = old[: len(old) - len(old.lstrip())] + fixed.strip()
    return "\n".join(lines) + ("\n" if template.endswith("\n") else "")


def quoted_text_lines(template: str) -> list[int]:
    """The template lines that write request text inside a JSON string as it is."""
    return sorted(
        {
            p.expression.line
            for p in placements(template)
            if p.place == "string" and writes_request_text(p.expression)
        }
    )


def all_quoted_text_fixed(template: str) -> str | None:
    """The template with every JSON string holding request text written whole by tojson, on
    every line; None when no line can be rewritten so."""
    lines = template.splitlines()
    changed = False
    for placement in placements(template):
        expression: Expression = placement.expression
        if placement.place != "string" or not writes_request_text(expression):
            continue
        if not 0 < expression.line <= len(lines):
            continue
        fixed = tojson_fix(lines[expression.line - 1], expression)
        if fixed is not None:
            lines[expression.line - 1], changed = fixed, True
    if not changed:
        return None
    return "\n".join(lines) + ("\n" if template.endswith("\n") else "")


def renders_valid_events(template: str, requests: Iterable[HookRequest]) -> bool:
    """True when `template` renders each of `requests` into valid events: a fix is suggested
    only when it does so on the requests that broke the template and on the good ones."""
    webhook = draft_webhook(template)
    return not any(render_events(webhook, request).failed for request in requests)
