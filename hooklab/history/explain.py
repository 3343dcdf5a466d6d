"""Why a request failed, in a template author's words: the cause, the template line that made
it, the field of the request, the rendered line with a caret under the error, and the fix.

The pipeline's error is the fact (Jinja's or the JSON parser's or Prefect's text, kept in the
failure event); this reads it against the template: which `{{ ... }}` wrote the text where the
JSON broke (`hooklab.core.tracing`), where that expression writes (inside quotes or as a
value, `hooklab.history.skeleton`), and what the request held there.
"""

from __future__ import annotations

import enum
import json
import re
from dataclasses import dataclass
from typing import Any

from hooklab.core.outcome import Outcome, Reason
from hooklab.core.request import BodyError, template_variables
from hooklab.core.tracing import trace
from hooklab.history.lint import path_label, quote_line, referenced_fields, value_at
from hooklab.history.skeleton import Placement, placements, tojson_fix

SHOWN_CHARACTERS = 40  # of a value quoted in a sentence
POINTER_WIDTH = 100  # characters of a rendered line shown around the caret
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
_BREAKS_A_STRING = re.compile(r'["\\\x00-\x1f]')


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
    found_placements: dict[int | None, Placement] = {p.number: p for p in placements(template)}
    for span in traced.expressions_before(offset):
        placement = found_placements.get(span.piece.expression)
        written = traced.text[span.start : span.end]
        if placement is not None:
            explained = _written_badly(template, placement, written, variables or {}, pointer)
            if explained is not None:
                return explained
    return Explanation(Cause.TEMPLATE_JSON, traced.line_at(offset), OWN_TEXT, pointer=pointer)


def _written_badly(
    template: str,
    placement: Placement,
    written: str,
    variables: dict[str, Any],
    pointer: tuple[str, ...],
) -> Explanation | None:
    """The explanation when the value an expression wrote is what broke the JSON; None when
    the value is fine and the text around it is not."""
    expression = placement.expression
    line = expression.line
    field, value = _field_of(expression.source, variables)
    name = field or f"{{{{ {expression.source} }}}}"
    line_text = _line_text(template, line)
    if placement.place == "string":
        bad = _BREAKS_A_STRING.search(written)
        if bad is None:
            return None
        message = (
            f"{name} is written inside a JSON string as it is, and here it holds "
            f"{_character(bad.group(0))} ({shorten(written)}): a quote, a backslash or a line "
            "break ends or breaks the string, so the output is not JSON (a 400 and a failure "
            "event)"
        )
        fix = tojson_fix(line_text, expression)
        return Explanation(
            Cause.TEXT_IN_QUOTES, line, message, field, written, _fix_line(fix), pointer
        )
    if _is_json(written):
        return None
    if value is ABSENT and field is not None and written == "":
        message = (
            f"{name} is missing from the request, so nothing is written where a JSON value must be"
        )
        fix = _with_filters(line_text, expression.source, "|default(none)|tojson")
        return Explanation(Cause.MISSING, line, message, field, ABSENT, _fix_line(fix), pointer)
    message = (
        f"{name} is written as it is where a JSON value goes, and here it is "
        f"{_described(value, written)}: not JSON. tojson writes any value as JSON"
    )
    fix = _with_filters(line_text, expression.source, "|tojson")
    return Explanation(Cause.NOT_JSON, line, message, field, value, _fix_line(fix), pointer)


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


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


def _character(char: str) -> str:
    names = {'"': "a quote", "\\": "a backslash", "\n": "a line break", "\t": "a tab"}
    return names.get(char, f"a control character (U+{ord(char):04X})")


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
            fix = _with_source(line_text, source, fixed_source)
            return Explanation(Cause.MISSING, line, message, field, ABSENT, _fix_line(fix))
    return Explanation(Cause.MISSING, line, _without_line(error))


def _without_line(error: str) -> str:
    return re.sub(r"^line \d+: ", "", error)


# Events Prefect rejects


_FIELD_PATH = re.compile(r'^([a-z_]+)((?:\[(?:\d+|"(?:[^"\\]|\\.)*")\])*): ')


def _rejected(template: str, outcome: Outcome) -> Explanation:
    error = outcome.error or ""
    key_path = field_key_path(error)
    placement = placement_at(template, key_path) if key_path else None
    if placement is None:
        return Explanation(Cause.REJECTED, key_line(template, key_path), error)
    expression = placement.expression
    field, value = _field_of(expression.source, variables=_variables(outcome) or {})
    if field is None:
        return Explanation(Cause.REJECTED, expression.line, error)
    message = f"{error} ({field} is written there"
    fix = None
    if isinstance(value, str) and "at most" in error:
        message += f": {len(value):,} characters"
        cut = _with_filters(_line_text(template, expression.line), expression.source, "[:200]")
        fix = _fix_line(cut)
    return Explanation(Cause.REJECTED, expression.line, message + ")", field, value, fix)


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


def caret(rendered: str, offset: int) -> tuple[str, ...]:
    """The rendered line holding `offset` and a caret under it, control characters shown as
    their pictures (one column each) and a long line cut around the caret."""
    start = rendered.rfind("\n", 0, offset) + 1 if offset > 0 else 0
    end = rendered.find("\n", offset)
    end = len(rendered) if end == -1 else end
    number = rendered.count("\n", 0, start) + 1
    text, column = rendered[start:end], offset - start
    if len(text) > POINTER_WIDTH:
        left = max(0, min(column - POINTER_WIDTH // 2, len(text) - POINTER_WIDTH))
        text = text[left : left + POINTER_WIDTH]
        column -= left
        if left:
            text, column = "…" + text[1:], column
    prefix = f"  rendered {number:>3} | "
    return (prefix + _visible(text), " " * (len(prefix) + column) + "^")


def _visible(text: str) -> str:
    return "".join(chr(0x2400 + ord(c)) if ord(c) < 0x20 else c for c in text)


def shorten(value: Any, limit: int = SHOWN_CHARACTERS) -> str:
    """A value as JSON for a sentence, a long one cut with its length said.

    >>> shorten("x" * 1020)
    '"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx…" (1,020 characters)'
    """
    if isinstance(value, str) and len(value) > limit:
        head = json.dumps(value[: limit - 8], ensure_ascii=False)[:-1]
        return f'{head}…" ({len(value):,} characters)'
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def shortened(value: Any, limit: int = SHOWN_CHARACTERS) -> Any:
    """A JSON value with every long text in it cut, for showing a request."""
    if isinstance(value, str) and len(value) > limit:
        return f"{value[: limit - 8]}… ({len(value):,} characters)"
    if isinstance(value, dict):
        return {key: shortened(item, limit) for key, item in value.items()}
    if isinstance(value, list):
        return [shortened(item, limit) for item in value]
    return value


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


def _with_filters(line_text: str, source: str, filters: str) -> str | None:
    """The line with `{{ source }}` written `{{ source<filters> }}` (`source` in brackets when
    it is more than a name and its lookups)."""
    simple = re.fullmatch(r"[A-Za-z_][\w.]*(?:\[[^\[\]]*\])*", source)
    return _with_source(line_text, source, (source if simple else f"({source})") + filters)


def _with_source(line_text: str, source: str, new_source: str) -> str | None:
    squeezed = re.sub(r"\s+", "", source)
    for found in re.finditer(r"\{\{-?(.*?)-?\}\}", line_text):
        if re.sub(r"\s+", "", found.group(1)) == squeezed:
            before, after = line_text[: found.start()], line_text[found.end() :]
            return f"{before}{{{{ {new_source} }}}}{after}"
    return None


def _fix_line(fix: str | None) -> str | None:
    return fix.strip() if fix else None


def failure_lines(template: str, outcome: Outcome) -> list[str]:
    """A failure as people read it: the error, the rendered line with a caret, the template
    line that made it, then the cause and the fix."""
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
    if explanation.fix:
        lines.append(f"  fix: {explanation.fix}")
    return lines
