"""A template read as JSON, each `{{ ... }}` a placeholder: where each expression writes (inside
quotes or as a bare value) and under which key, for the lint and for errors that explain.

Jinja's lexer gives the expressions; `{% ... %}` blocks are dropped, and the text left is
walked as JSON. A template that is not JSON-shaped gives what can be read of it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

from jinja2 import TemplateSyntaxError

from hooklab.core.templates import ENVIRONMENT

MARK = "\x00"
Place = Literal["string", "value"]


@dataclass(frozen=True)
class Expression:
    """One `{{ ... }}` of the template: where it is and what it does."""

    line: int
    source: str  # the expression, its spacing normalized: `body.get("x")|tojson`
    filters: tuple[str, ...]
    bare_name: str | None  # the expression is only this name: `{{ body }}`
    names: tuple[str, ...] = ()  # every name it reads: `body`, `headers`, ...


@dataclass(frozen=True)
class Placement:
    """Where an expression writes: inside a JSON string or as a value, under `key_path` (an
    item of a list appears as "[]")."""

    place: Place
    key_path: tuple[str, ...]
    expression: Expression
    number: int  # the expression's number in the template, 0 the first


def skeleton(template: str) -> tuple[str, list[Expression]]:
    """The template's text with every `{{ }}` as one MARK character and every `{% %}` dropped,
    and its expressions in order."""
    out: list[str] = []
    expressions: list[Expression] = []
    current: list[tuple[int, str, str]] | None = None
    try:
        tokens = list(ENVIRONMENT.lex(template))
    except TemplateSyntaxError:
        return "", []
    in_block = False
    for lineno, kind, value in tokens:
        if kind == "variable_begin":
            current = []
        elif kind == "variable_end" and current is not None:
            expressions.append(_expression(lineno, current))
            out.append(MARK)
            current = None
        elif current is not None:
            current.append((lineno, kind, value))
        elif kind == "block_begin":
            in_block = True
        elif kind == "block_end":
            in_block = False
        elif kind == "data" and not in_block:
            out.append(value)
    return "".join(out), expressions


def _expression(end_line: int, tokens: list[tuple[int, str, str]]) -> Expression:
    line = tokens[0][0] if tokens else end_line
    source = " ".join(value for _, kind, value in tokens if kind != "whitespace")
    source = re.sub(r"\s*([.\[\]|()])\s*", r"\1", source).replace(" ,", ",")
    significant = [t for t in tokens if t[1] != "whitespace"]
    # `x|tojson` and `x | tojson` alike: the filter is the name after the bar.
    filters = tuple(
        significant[i + 1][2]
        for i, (_, _kind, value) in enumerate(significant[:-1])
        if value == "|" and significant[i + 1][1] == "name"
    )
    bare = significant[0][2] if len(significant) == 1 and significant[0][1] == "name" else None
    names = tuple(
        value
        for i, (_, kind, value) in enumerate(significant)
        if kind == "name" and (i == 0 or significant[i - 1][2] not in (".", "|"))
    )
    return Expression(line, source, filters, bare, names)


def placements(template: str) -> list[Placement]:
    """Where each expression of the template writes, in order; an expression the JSON walk
    does not reach (after the JSON ends, say) has none."""
    text, expressions = skeleton(template)
    return list(placed(text, expressions))


def placed(text: str, expressions: list[Expression]) -> Iterator[Placement]:
    """`placements`, from the skeleton already read."""
    marks = iter(enumerate(expressions))
    for _index, char, in_string, key_path in scan(text):
        if char == MARK:
            found = next(marks, None)
            if found is not None:
                number, expression = found
                place: Place = "string" if in_string else "value"
                yield Placement(place, tuple(key_path), expression, number)


def literal_labels(text: str, template: str) -> Iterator[tuple[int | None, list[str], str]]:
    """Numbers and true/false written as a resource's labels, with their line."""
    literal = re.compile(r"-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?|true|false")
    for index, char, in_string, key_path in scan(text):
        if in_string or not is_label(key_path) or not (char.isdigit() or char in "-tf"):
            continue
        previous = text[:index].rstrip()
        if not previous.endswith(":"):
            continue
        match = literal.match(text, index)
        if match:
            value = match.group(0)
            yield _line_of(template, value, key_path[-1]), key_path, value


def _line_of(template: str, literal: str, label: str) -> int | None:
    pattern = re.compile(rf'"{re.escape(label)}"\s*:\s*{re.escape(literal)}')
    found = pattern.search(template)
    return template.count("\n", 0, found.start()) + 1 if found else None


def is_label(key_path: list[str] | tuple[str, ...]) -> bool:
    """A value directly inside `resource`, or inside one of the `related` resources."""
    if len(key_path) == 2 and key_path[0] == "resource":
        return True
    return len(key_path) == 3 and key_path[0] == "related" and key_path[1] == "[]"


def scan(text: str) -> Iterator[tuple[int, str, bool, list[str]]]:
    """Walk JSON-like text, yielding each character outside strings and each mark inside one,
    with the key path of the value written there (an item of a list appears as "[]")."""
    frames: list[list[Any]] = []  # per open container: [kind "{" or "[", its name, pending key]
    last_string = ""
    in_string = escaped = False
    buffer: list[str] = []

    def here() -> list[str]:
        names = [frame[1] for frame in frames[1:]]
        if not frames:
            return names
        top = frames[-1]
        return [*names, top[2] or "" if top[0] == "{" else "[]"]

    for index, char in enumerate(text):
        if in_string:
            if char == MARK:
                yield index, char, True, here()
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
                last_string = "".join(buffer)
            else:
                buffer.append(char)
            continue
        if char == '"':
            in_string, buffer = True, []
        elif char == ":" and frames:
            frames[-1][2] = last_string
        elif char in "{[":
            name = here()[-1] if frames else ""
            frames.append([char, name, None])
        elif char in "}]":
            if frames:
                frames.pop()
        elif char == "," and frames:
            frames[-1][2] = None
        elif not char.isspace():
            yield index, char, False, here()


# The fix for text written inside quotes: the whole string written by tojson.

_EXPRESSION_TEXT = re.compile(r"\{\{-?(.*?)-?\}\}", re.DOTALL)
_SIMPLE = re.compile(
    r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*|\[[^\[\]]*\]|\([^()]*\))*"
    r"(?:\|[A-Za-z_]\w*(?:\([^()]*\))?)*\Z"
)


def tojson_fix(line_text: str, expression: Expression) -> str | None:
    """The template line with the JSON string that holds `expression` written whole by
    `tojson`, so that any text in it comes out as valid JSON; None when the line holds no
    such string (it spans lines, say).

    >>> expression = Expression(1, "body.id", (), None, ("body",))
    >>> tojson_fix('  "id": "shop.order.{{ body.id }}",', expression)
    '  "id": {{ ("shop.order." ~ body.id)|tojson }},'
    """
    found = quoted_string(line_text, expression)
    if found is None:
        return None
    start, end, replacement = found
    return line_text[:start] + replacement + line_text[end:]


def quoted_string(line_text: str, expression: Expression) -> tuple[int, int, str] | None:
    """Where the JSON string holding `expression` is on its line (quotes included), and the
    `{{ (...)|tojson }}` that writes it safely; None when the line holds no such string."""
    wanted = _squeezed(expression.source)
    for start, end, parts in _quoted_strings(line_text):
        if any(kind == "expression" and _squeezed(text) == wanted for kind, text in parts):
            return start, end, "{{ " + _tojson_of(parts) + " }}"
    return None


def _squeezed(text: str) -> str:
    return re.sub(r"\s+", "", text)


def _quoted_strings(line: str) -> Iterator[tuple[int, int, list[tuple[str, str]]]]:
    """Each JSON string on a line holding a `{{ }}`: where it starts and ends (its quotes
    included), and its parts, ("text", JSON-escaped text) or ("expression", source)."""
    expressions = {m.start(): m for m in _EXPRESSION_TEXT.finditer(line)}
    index, start = 0, None
    parts: list[tuple[str, str]] = []
    text_from = 0
    while index < len(line):
        found = expressions.get(index)
        if found is not None:
            if start is not None:
                parts.append(("text", line[text_from:index]))
                parts.append(("expression", found.group(1).strip()))
                text_from = found.end()
            index = found.end()
            continue
        char = line[index]
        if start is None:
            if char == '"':
                start, parts, text_from = index, [], index + 1
        elif char == "\\":
            index += 1
        elif char == '"':
            parts.append(("text", line[text_from:index]))
            if any(kind == "expression" for kind, _ in parts):
                yield start, index + 1, [part for part in parts if part[1]]
            start = None
        index += 1


def _tojson_of(parts: list[tuple[str, str]]) -> str:
    terms = []
    for kind, text in parts:
        if kind == "expression":
            terms.append(text if _SIMPLE.match(text) else f"({text})")
            continue
        try:
            value = json.loads(f'"{text}"')
        except ValueError:
            value = text
        terms.append(json.dumps(value, ensure_ascii=False))
    if len(terms) == 1 and parts[0][0] == "expression":
        # Quoted, it was always text: `string` keeps it so (a label must be a string).
        return f"{terms[0]}|string|tojson"
    return f"({' ~ '.join(terms)})|tojson"
