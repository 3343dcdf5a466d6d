"""Which `{{ ... }}` broke a template's JSON output, and how, in a sentence: read only when a
request fails (the template is traced again then), so a request that succeeds pays nothing.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from typing import Any

from hooklab.core.skeleton import Placement, placements, quoted_string
from hooklab.core.tracing import Trace, trace

JSON_ERROR_AT = re.compile(r"at line \d+ column \d+ \(char (\d+)\)")
# The parser names where an unterminated string began: a value written in it after that point
# (a backslash that escaped the closing quote, say) is what left it open.
UNTERMINATED = "Unterminated string starting at"
BREAKS_A_STRING = re.compile(r'["\\\x00-\x1f]')


@dataclass(frozen=True)
class Culprit:
    """The expression whose output broke the JSON: what it wrote and, inside a string, the
    character that broke it (None for a value written bare that is not JSON)."""

    placement: Placement
    written: str
    bad: str | None

    @property
    def quoted_twice(self) -> bool:
        """Whether it wrote a JSON string, its own quotes included, inside a quoted string
        (`"{{ x|tojson }}"`): the fix is to lose the outer quotes, not to add tojson."""
        return self.bad == '"' and self.written.startswith('"') and is_json(self.written)


_WITH_CAUSE = re.compile(
    r"^(Template output is not valid JSON: ).* \((.* at line \d+ column \d+ \(char \d+\))\)$"
)


def with_cause(error: str, cause: str) -> str:
    """The pipeline's error for output that is not JSON, the cause first, in words, then the
    parser's text in brackets."""
    prefix, _, parser = error.partition(": ")
    return f"{prefix}: {cause} ({parser})"


def parser_words(error: str) -> str:
    """An error as the JSON parser gave it, without the cause `with_cause` put before it:
    what a case's expectation keeps, so that rewording a cause breaks no case.

    >>> parser_words("Template output is not valid JSON: x is bad (Expecting value at line 1 "
    ...              "column 2 (char 1))")
    'Template output is not valid JSON: Expecting value at line 1 column 2 (char 1)'
    """
    return _WITH_CAUSE.sub(r"\1\2", error)


def error_offset(error: str) -> int | None:
    """Where in the rendered text the JSON parser's error says it stopped."""
    found = JSON_ERROR_AT.search(error)
    return int(found.group(1)) if found else None


def find_culprit(template: str, traced: Trace, offset: int, error: str) -> Culprit | None:
    """The first expression before where the parse stopped (or, for a string left open,
    after where it began) whose output cannot stand where it is written."""
    spans = traced.expressions_before(offset)
    if UNTERMINATED in error:
        spans += [s for s in traced.spans if s.piece.expression is not None and s.start > offset]
    found: dict[int | None, Placement] = {p.number: p for p in _placements(template)}
    for span in spans:
        placement = found.get(span.piece.expression)
        if placement is None:
            continue
        written = traced.text[span.start : span.end]
        if placement.place == "string":
            bad = BREAKS_A_STRING.search(written)
            if bad is not None:
                return Culprit(placement, written, bad.group(0))
        elif not is_json(written):
            return Culprit(placement, written, None)
    return None


@functools.lru_cache(maxsize=32)
def _placements(template: str) -> tuple[Placement, ...]:
    return tuple(placements(template))


def is_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


def character(char: str) -> str:
    """A character that breaks a JSON string, in words."""
    names = {'"': "a quote", "\\": "a backslash", "\n": "a line break", "\t": "a tab"}
    return names.get(char, f"a control character (U+{ord(char):04X})")


def json_error_cause(
    template: str, rendered: str, variables: dict[str, Any], error: str
) -> str | None:
    """The cause of output that is not JSON, in a sentence with the template line and the
    fix, or None when it cannot be told cheaply.

    >>> template = '{"event": "a.{{ body.x }}"}'
    >>> json_error_cause(template, '{"event": "a.\\\\"}', {"body": {"x": "\\\\"}}, "Unterminated "
    ...     "string starting at line 1 column 11 (char 10)")
    'a backslash in body.x (line 1 of the template) is written into a JSON string unescaped: write {{ ("a." ~ body.x)|tojson }}'
    """  # noqa: E501
    offset = error_offset(error)
    if offset is None:
        return None
    traced = trace(template, variables)
    if traced is None or traced.text != rendered:
        return None
    culprit = find_culprit(template, traced, offset, error)
    if culprit is None:
        return None
    expression = culprit.placement.expression
    where = f"{expression.source} (line {expression.line} of the template)"
    if culprit.quoted_twice:
        return (
            f"{where} already writes a JSON string with its own quotes, inside a quoted "
            f"string: remove the quotes around {{{{ {expression.source} }}}}"
        )
    if culprit.bad is not None:
        lines = template.splitlines()
        line = lines[expression.line - 1] if expression.line <= len(lines) else ""
        found = quoted_string(line, expression)
        fix = found[2] if found else "the whole string with tojson"
        said = character(culprit.bad)
        return f"{said} in {where} is written into a JSON string unescaped: write {fix}"
    if culprit.written == "":
        return (
            f"{where} wrote nothing where a JSON value goes (a missing field?): write "
            f"{{{{ {expression.source}|default(none)|tojson }}}}"
        )
    simple = re.fullmatch(r"[A-Za-z_][\w.]*(?:\[[^\[\]]*\])*", expression.source)
    source = expression.source if simple else f"({expression.source})"
    return (
        f"{where} is written bare where a JSON value goes, and its text is not JSON: write "
        f"{{{{ {source}|tojson }}}}"
    )
