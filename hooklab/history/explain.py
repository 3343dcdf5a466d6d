"""Why a request failed, in a template author's words: the cause, the template line that made
it, the field of the request, the rendered line with a caret under the error, and the fix.

The pipeline's error is the fact (Jinja's or the JSON parser's or Prefect's text, kept in the
failure event); this reads it against the template: which `{{ ... }}` wrote the text where the
JSON broke (`hooklab.core.tracing`), where that expression writes (inside quotes or as a
value, `hooklab.core.skeleton`), and what the request held there.
"""

from __future__ import annotations

import enum
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from hooklab.core.culprit import Culprit, character, find_culprit
from hooklab.core.outcome import Outcome, Reason
from hooklab.core.request import BodyError, HookRequest, template_variables
from hooklab.core.skeleton import Placement, placements, tojson_fix
from hooklab.core.tracing import trace
from hooklab.history.fixes import (
    all_quoted_text_fixed,
    cut_after_tojson,
    quoted_text_lines,
    renders_valid_events,
    truncated,
    with_filters,
    with_line,
    with_source,
)
from hooklab.history.lint import path_label, quote_line, referenced_fields, value_at
from hooklab.history.shown import caret, shorten

ABSENT: Any = type("Absent", (), {"__repr__": lambda self: "(absent)"})()


class Cause(str, enum.Enum):
    """What went wrong, as a template author would group it; each has a heading."""

    TEXT_IN_QUOTES = "text-in-quotes"
    MISSING = "missing"
    NOT_JSON = "not-json"
    TEMPLATE_JSON = "template-json"
    REJECTED = "rejected"
    RENDER = "render"
    BODY = "body"
    REQUEST = "request"

    @property
    def heading(self) -> str:
        return _TITLES[self]

    @property
    def sentence(self) -> str:
        """What this cause means, for a template author, and the way out."""
        return _SENTENCES[self]

    @property
    def specific(self) -> bool:
        """Whether each failure of this cause needs its own words (Prefect's or Jinja's
        reason), beyond the cause's sentence, the value and the fix."""
        return self not in (Cause.TEXT_IN_QUOTES, Cause.MISSING, Cause.NOT_JSON)


_TITLES = {
    Cause.TEXT_IN_QUOTES: "Request text written inside quotes as it is",
    Cause.MISSING: "A field the template reads is missing from the request",
    Cause.NOT_JSON: "A value written where JSON is expected, but not as JSON",
    Cause.TEMPLATE_JSON: "The template's own text is not JSON",
    Cause.REJECTED: "Prefect rejects the event",
    Cause.RENDER: "The template fails to render",
    Cause.BODY: "The request's body cannot be read",
    Cause.REQUEST: "The request is refused before the template runs",
}


_SENTENCES = {
    Cause.TEXT_IN_QUOTES: (
        "A quote, a backslash or a line break in a sender's text ends or breaks the JSON string "
        "it is written into, so the output is not JSON: the sender gets a 400, a failure event "
        "is stored, and no automation fires. Write the whole string with tojson, which escapes "
        "them."
    ),
    Cause.MISSING: (
        "A request without this field leaves nothing, or nothing tojson can write, where the "
        "event needs a value. Give it a default: |default(none) writes null."
    ),
    Cause.NOT_JSON: (
        "A value written bare is JSON only when it is a number: text, null (None), true and "
        "false (True, False), lists and objects come out as Python writes them. Write it with "
        "tojson."
    ),
    Cause.TEMPLATE_JSON: "The template's own text around its expressions is not valid JSON.",
    Cause.REJECTED: (
        "The output is JSON, but Prefect refuses the event: a field past its limits, or a "
        "label that is missing, empty or not text."
    ),
    Cause.RENDER: "Jinja stops with an error while rendering.",
    Cause.BODY: "The body does not parse as its Content-Type says, so the template never runs.",
    Cause.REQUEST: (
        "The request is refused before the template runs: a disabled webhook, a missing key "
        "or signature, or a body too large."
    ),
}


@dataclass(frozen=True)
class Explanation:
    """A failure read against its template. `pointer` is the rendered line and a caret under
    where the JSON broke; `fix` a corrected template line, or a hint where none can be made."""

    cause: Cause
    line: int | None
    message: str
    field: str | None = None
    value: Any = ABSENT
    fix: str | None = None
    pointer: tuple[str, ...] = ()

    @property
    def key(self) -> tuple[Cause, int | None, str | None]:
        """What makes two failures the same: their cause, template line and field."""
        return (self.cause, self.line, self.field)


def explain(template: str, outcome: Outcome) -> Explanation | None:
    """Why `outcome` failed, read against `template`; None when it did not fail.

    >>> from hooklab.core.pipeline import render_events
    >>> from hooklab.history.replay import draft_webhook
    >>> from hooklab.core.request import HookRequest
    >>> hook = draft_webhook('{"event": "a.{{ body.x }}", "resource": {"prefect.resource.id": 1}}')
    >>> explain(hook.template, render_events(hook, HookRequest.fake(json={"x": '"'}))).cause
    <Cause.TEXT_IN_QUOTES: 'text-in-quotes'>
    """
    if not outcome.failed:
        return None
    reason = outcome.reason
    if reason is Reason.INVALID_OUTPUT:
        return _invalid_output(template, outcome)
    if reason is Reason.RENDER_ERROR:
        return _render_error(template, outcome)
    if reason is Reason.INVALID_EVENT:
        return _rejected(template, outcome)
    if reason is Reason.BAD_BODY:
        return Explanation(Cause.BODY, None, "The sender's body is not what its Content-Type says")
    return Explanation(Cause.REQUEST, None, outcome.error or "")


# Output that is not JSON


_JSON_ERROR_AT = re.compile(r"not valid JSON: .* at line \d+ column \d+ \(char (\d+)\)")
OWN_TEXT = "The template's own text is not JSON where the caret points"


def _invalid_output(template: str, outcome: Outcome) -> Explanation:
    found = _JSON_ERROR_AT.search(outcome.error or "")
    rendered = outcome.rendered
    if found is None or rendered is None:  # JSON, but not an object
        return Explanation(Cause.TEMPLATE_JSON, None, outcome.error or "")
    offset = int(found.group(1))
    pointer = caret(rendered, offset)
    variables = _variables(outcome)
    traced = trace(template, variables) if variables is not None else None
    if traced is None or traced.text != rendered:
        line = template_line(template, outcome)
        message = "The output is not JSON where the caret points"
        return Explanation(Cause.TEMPLATE_JSON, line, message, pointer=pointer)
    # The parser stops at or after the first value that broke the text: the first expression
    # before that point whose output cannot stand where it is written.
    culprit = find_culprit(template, traced, offset, outcome.error or "")
    if culprit is not None:
        return _written_badly(template, culprit, variables or {}, pointer)
    return Explanation(Cause.TEMPLATE_JSON, traced.line_at(offset), OWN_TEXT, pointer=pointer)


def _written_badly(
    template: str, culprit: Culprit, variables: dict[str, Any], pointer: tuple[str, ...]
) -> Explanation:
    """The explanation when the value an expression wrote is what broke the JSON."""
    expression, written = culprit.placement.expression, culprit.written
    line = expression.line
    field, value = _field_of(expression.source, variables)
    name = field or f"{{{{ {expression.source} }}}}"
    line_text = _line_text(template, line)
    if culprit.quoted_twice:  # more tojson would only nest the quotes
        message = (
            f"{{{{ {expression.source} }}}} already writes a JSON string with its own quotes, "
            "inside a quoted string, so the quotes come twice: remove the quotes around it"
        )
        unquoted = re.sub(
            r'"\s*(\{\{\s*' + re.escape(expression.source) + r'\s*\}\})\s*"',
            r"\1",
            line_text,
            count=1,
        )
        fix = unquoted if unquoted != line_text else None
        return Explanation(
            Cause.TEXT_IN_QUOTES, line, message, field, written, _fix_line(fix), pointer
        )
    if culprit.bad is not None:
        message = (
            f"{name} is written inside a JSON string as it is, and here it holds "
            f"{character(culprit.bad)} ({shorten(written)}): a quote, a backslash or a line "
            "break ends or breaks the string, so the output is not JSON (a 400 and a failure "
            "event)"
        )
        whole = all_quoted_text_fixed(template)  # every such string on the line, not one
        fix = _line_text(whole, line) if whole else tojson_fix(line_text, expression)
        return Explanation(
            Cause.TEXT_IN_QUOTES, line, message, field, written, _fix_line(fix), pointer
        )
    if value is ABSENT and field is not None and written == "":
        message = (
            f"{name} is missing from the request, so nothing is written where a JSON value must be"
        )
        fix = with_filters(line_text, expression.source, "|default(none)|tojson")
        return Explanation(Cause.MISSING, line, message, field, ABSENT, _fix_line(fix), pointer)
    cut = cut_after_tojson(expression.source)
    if cut is not None:  # `((x)|tojson)[:200]`: the cut takes tojson's closing quote
        message = (
            f"{name} is cut after tojson wrote it, and the cut drops the closing quote or "
            "bracket: cut the value first, then write it with tojson"
        )
        fix = with_source(line_text, expression.source, cut)
        return Explanation(Cause.NOT_JSON, line, message, field, value, _fix_line(fix), pointer)
    message = (
        f"{name} is written as it is where a JSON value goes, and here it is "
        f"{_described(value, written)}: not JSON. tojson writes any value as JSON"
    )
    fix = with_filters(line_text, expression.source, "|tojson")
    return Explanation(Cause.NOT_JSON, line, message, field, value, _fix_line(fix), pointer)


def _described(value: Any, written: str) -> str:
    if value is None:
        return "null (Jinja writes None)"
    if isinstance(value, bool):
        return f"{json.dumps(value)} (Jinja writes {value})"
    if isinstance(value, (dict, list)):
        kind = "an object" if isinstance(value, dict) else "a list"
        return f"{kind} (Jinja writes Python's repr, with single quotes)"
    if written == "":
        return "empty text (nothing is written)"
    return f"the text {shorten(written)} (written without quotes)"


# Render errors


_MISSING_IN_TOJSON = "tojson cannot write a missing value"


def _render_error(template: str, outcome: Outcome) -> Explanation:
    line = outcome.line
    error = outcome.error or ""
    if _MISSING_IN_TOJSON not in error or line is None:
        return Explanation(Cause.RENDER, line, _without_line(error))
    variables = _variables(outcome) or {}
    line_text = _line_text(template, line)
    for placement in placements(template):
        expression = placement.expression
        if expression.line != line or "tojson" not in expression.filters:
            continue
        field, value = _field_of(expression.source, variables)
        if field is not None and value is ABSENT:
            source = expression.source
            fixed_source = re.sub(r"\|\s*tojson", "|default(none)|tojson", source, count=1)
            message = (
                f"{field} is missing from the request, and tojson cannot write a missing value"
            )
            fix = with_source(line_text, source, fixed_source)
            return Explanation(Cause.MISSING, line, message, field, ABSENT, _fix_line(fix))
    return Explanation(Cause.MISSING, line, _without_line(error))


def _without_line(error: str) -> str:
    return re.sub(r"^line \d+: ", "", error)


# Events Prefect rejects


_FIELD_PATH = re.compile(r'^([a-z_]+)((?:\[(?:\d+|"(?:[^"\\]|\\.)*")\])*): ')


def _rejected(template: str, outcome: Outcome) -> Explanation:
    error = outcome.error or ""
    key_path = field_key_path(error)
    variables = _variables(outcome) or {}
    placement = placement_at(template, key_path) if key_path else None
    limit = _LIMIT.search(error)
    if placement is not None and limit is not None:
        placement = _longest_written(template, key_path, variables) or placement
    if placement is None:
        return Explanation(Cause.REJECTED, key_line(template, key_path), error)
    expression = placement.expression
    field, value = _field_of(expression.source, variables)
    if field is None:
        return Explanation(Cause.REJECTED, expression.line, error)
    message = f"{error} ({field} is written there"
    fix = None
    if limit is not None:
        if isinstance(value, str):
            message += f": {len(value):,} characters"
        line_text = _line_text(template, expression.line)
        fix = _fix_line(truncated(line_text, placement, int(limit.group(1).replace(",", ""))))
    return Explanation(Cause.REJECTED, expression.line, message + ")", field, value, fix)


_LIMIT = re.compile(r"at most ([\d,]+)")


def _longest_written(
    template: str, key_path: tuple[str, ...], variables: dict[str, Any]
) -> Placement | None:
    """Of the expressions written at `key_path`, the one whose value is the longest as text:
    the one a length limit is about."""
    exact = [p for p in placements(template) if p.key_path == key_path]

    def length(placement: Placement) -> int:
        _field, value = _field_of(placement.expression.source, variables)
        return -1 if value is ABSENT else len(str(value))

    return max(exact, key=length) if exact else None


def field_key_path(error: str) -> tuple[str, ...]:
    """The event field a validation error names, as a key path: `resource["n"]: ...` gives
    ("resource", "n"); an item of a list is "[]", as the skeleton writes it."""
    found = _FIELD_PATH.match(error)
    if found is None:
        return ()
    path = [found.group(1)]
    for part in re.findall(r'\[(\d+|"(?:[^"\\]|\\.)*")\]', found.group(2)):
        path.append("[]" if part.isdigit() else json.loads(part))
    return tuple(path)


def placement_at(template: str, key_path: tuple[str, ...]) -> Placement | None:
    """The expression that writes the field at `key_path`: the one written exactly there, or
    the one that writes a whole object above it (`"payload": {{ body|tojson }}`), or the only
    one written below it."""
    found = placements(template)
    exact = [p for p in found if p.key_path == key_path]
    if exact:
        return exact[0]
    above = [p for p in found if key_path[: len(p.key_path)] == p.key_path]
    if above:
        return max(above, key=lambda p: len(p.key_path))
    below = [p for p in found if p.key_path[: len(key_path)] == key_path]
    return below[0] if len(below) == 1 else None


def key_line(template: str, key_path: tuple[str, ...]) -> int | None:
    """The line where the template writes the last key of `key_path`, when it does so once."""
    keys = [key for key in key_path if key != "[]"]
    if not keys:
        return None
    pattern = re.compile(rf"{re.escape(json.dumps(keys[-1]))}\s*:")
    lines = [number for number, text in enumerate(template.splitlines(), 1) if pattern.search(text)]
    return lines[0] if len(lines) == 1 else None


# Shared pieces


def template_line(template: str, outcome: Outcome) -> int | None:
    """The template line an outcome's failure comes from: the one the render error names, or
    for output that is not JSON the line of the last thing before where it breaks (a value
    missing at the end of a line is noticed on the next one), when the template renders line
    for line (each of its lines one line of output)."""
    if outcome.line is not None:
        return outcome.line
    found = _JSON_ERROR_AT.search(outcome.error or "")
    rendered = outcome.rendered
    if found is None or rendered is None:
        return None
    if len(rendered.splitlines()) != len(template.splitlines()):
        return None
    return rendered[: int(found.group(1))].rstrip().count("\n") + 1


def _variables(outcome: Outcome) -> dict[str, Any] | None:
    if outcome.request is None:
        return None
    try:
        return template_variables(outcome.request)
    except BodyError:
        return None


def referenced_in(source: str) -> list[tuple[str, str, tuple[Any, ...]]]:
    """The request fields an expression reads: each as its name (`body.x`), root and keys."""
    found = referenced_fields("{{ " + source + " }}")
    return [(path_label(root, keys), root, keys) for root, keys in found]


def _field_of(source: str, variables: dict[str, Any]) -> tuple[str | None, Any]:
    """The first request field an expression reads (`body.x`), and its value there (ABSENT
    when the request lacks it)."""
    for name, root, keys in referenced_in(source):
        value = value_at(variables[root], keys, ABSENT) if root in variables else ABSENT
        return name, value
    return None, ABSENT


def _line_text(template: str, line: int | None) -> str:
    lines = template.splitlines()
    return lines[line - 1] if line is not None and 0 < line <= len(lines) else ""


def _fix_line(fix: str | None) -> str | None:
    return fix.strip() if fix else None


def checked_fix(
    template: str, explanation: Explanation, requests: Iterable[HookRequest]
) -> str | None:
    """The explanation's fix, when the template with it renders valid events for `requests`
    (those that broke it, and good ones); None when it does not, or there is none."""
    if not explanation.fix or explanation.line is None:
        return None
    fixed = with_line(template, explanation.line, explanation.fix)
    return explanation.fix if renders_valid_events(fixed, requests) else None


def other_lines(template: str, explanation: Explanation) -> list[int]:
    """The other template lines with the same cause: for request text inside quotes, every
    line that writes such text."""
    if explanation.cause is not Cause.TEXT_IN_QUOTES:
        return []
    return [line for line in quoted_text_lines(template) if line != explanation.line]


def failure_lines(template: str, outcome: Outcome) -> list[str]:
    """A failure as people read it: the error, the rendered line with a caret, the template
    line that made it, then the cause and the fix (when it fixes this request)."""
    lines = [outcome.error or "the request failed"]
    explanation = explain(template, outcome)
    if explanation is None:
        return lines
    lines += explanation.pointer
    if explanation.line is not None and _line_text(template, explanation.line):
        text = quote_line(template, explanation.line).split(" | ", 1)[1]
        lines.append(f"  template {explanation.line:>3} | {text}")
    if explanation.cause not in (Cause.RENDER, Cause.REQUEST):
        lines.append(f"  {explanation.message}")
    requests = [outcome.request] if outcome.request is not None else []
    fix = checked_fix(template, explanation, requests)
    if fix:
        lines.append(f"  fix: {fix}")
    others = other_lines(template, explanation)
    if others:
        listed = ", ".join(map(str, others))
        lines.append(
            f"  the same on template line{'s' if len(others) > 1 else ''} {listed}: "
            "write each such string with tojson"
        )
    return lines
