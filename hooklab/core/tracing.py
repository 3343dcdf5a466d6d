"""Which part of a template wrote each part of its output: for errors that point into the
template (a JSON error's position in the rendered text, traced back to the line that made it).

The template is compiled once more with every piece of its output (a run of text, or a
`{{ ... }}`) wrapped in marks, rendered with the same variables in the same sandbox, and the
marks are read back out. Only a failure is traced, so the receiver's path never pays for it.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from jinja2 import nodes
from jinja2.visitor import NodeTransformer

from hooklab.core.templates import Template, TemplateError, compile_transformed

# Marks from Unicode's private use areas: a piece opens with START and its number (one
# character from plane 15), and closes with END. Text that holds them is not traced.
START, END = "\ue000", "\ue001"
_NUMBERS = 0xF0000
_MAX_PIECES = 0xFFFD


@dataclass(frozen=True)
class Piece:
    """Part of a template that writes output: a run of text, or one `{{ ... }}`."""

    line: int  # the template line where it starts
    expression: int | None  # for a `{{ ... }}`, its number in the template (0 is the first)


@dataclass(frozen=True)
class Span:
    """Where a piece's output landed in the rendered text, `start` to `end`."""

    start: int
    end: int
    piece: Piece


@dataclass(frozen=True)
class Trace:
    """A rendered text and, for each part of it, the piece of the template that wrote it."""

    text: str
    spans: tuple[Span, ...]  # innermost pieces, in order of the text

    def at(self, offset: int) -> Span | None:
        """The span holding the character at `offset` (or the last, past the end)."""
        found = None
        for span in self.spans:
            if span.start <= offset < span.end:
                return span
            if span.start < span.end <= offset:
                found = span
        return found

    def line_at(self, offset: int) -> int | None:
        """The template line that wrote the character at `offset`."""
        span = self.at(offset)
        if span is None:
            return None
        if span.piece.expression is not None:
            return span.piece.line
        return span.piece.line + self.text.count("\n", span.start, min(offset, span.end))

    def expressions_before(self, offset: int) -> list[Span]:
        """The spans of the `{{ ... }}` that wrote at or before `offset`, in order: where to
        look for the value that broke a JSON parse at `offset` (a value that wrote nothing
        has an empty span where it would have written)."""
        return [s for s in self.spans if s.piece.expression is not None and s.start <= offset]


class _Marker(NodeTransformer):
    def __init__(self) -> None:
        self.pieces: list[Piece] = []
        self.expressions = 0

    def visit_Output(self, node: nodes.Output) -> nodes.Node:
        self.generic_visit(node)
        marked: list[nodes.Expr] = []
        for child in node.nodes:
            if len(self.pieces) >= _MAX_PIECES:
                return node
            expression = None
            if not isinstance(child, nodes.TemplateData):
                expression = self.expressions
                self.expressions += 1
            number = len(self.pieces)
            self.pieces.append(Piece(child.lineno, expression))
            opening = nodes.TemplateData(START + chr(_NUMBERS + number), lineno=child.lineno)
            closing = nodes.TemplateData(END, lineno=child.lineno)
            marked += [opening, child, closing]
        node.nodes = marked
        return node


def trace(source: str, variables: Mapping[str, Any]) -> Trace | None:
    """Render `source` with `variables` (as the pipeline does) and say which piece wrote each
    part of the text; None when it cannot be told (the render fails, or the marks were
    changed on the way: a value that holds them, a filter applied to written output).

    >>> found = trace('{"a": "{{ x }}"}', {"x": 'say "hi"'})
    >>> found.text
    '{"a": "say "hi""}'
    >>> [(s.start, s.end, s.piece.expression) for s in found.spans]
    [(0, 7, None), (7, 15, 0), (15, 17, None)]
    """
    try:
        template, pieces = _marked(source)
        if template.is_text:
            piece = Piece(1, None)
            return Trace(source, (Span(0, len(source), piece),))
        marked = template.render(dict(variables))
    except TemplateError:
        return None
    return _read_marks(marked, list(pieces))


@functools.lru_cache(maxsize=32)
def _marked(source: str) -> tuple[Template, tuple[Piece, ...]]:
    """The template compiled with its marks, kept for the next failure of the same template
    (a receiver explains each failure it stores)."""
    marker = _Marker()

    def mark(tree: nodes.Template) -> nodes.Template:
        found = marker.visit(tree)
        assert isinstance(found, nodes.Template)
        return found

    template = compile_transformed(source, mark)
    return template, tuple(marker.pieces)


_MARKS = re.compile(f"{START}(.)|{END}", re.DOTALL)


def _read_marks(marked: str, pieces: list[Piece]) -> Trace | None:
    """The text without its marks, and the innermost piece of each run of it. A piece that
    wrote nothing (a value missing) keeps an empty span where it would have written."""
    text: list[str] = []
    spans: list[Span] = []
    stack: list[list[Any]] = []  # [piece, wrote anything]
    length = position = 0
    for match in _MARKS.finditer(marked):
        run = marked[position : match.start()]
        position = match.end()
        if run:
            if not stack:
                return None  # output outside every piece: the marks were moved
            spans.append(Span(length, length + len(run), stack[-1][0]))
            for entry in stack:
                entry[1] = True
            text.append(run)
            length += len(run)
        if match.group(1) is not None:
            number = ord(match.group(1)) - _NUMBERS
            if not 0 <= number < len(pieces):
                return None
            stack.append([pieces[number], False])
        else:
            if not stack:
                return None
            piece, wrote = stack.pop()
            if not wrote:
                spans.append(Span(length, length, piece))
    if stack or position != len(marked):
        return None
    return Trace("".join(text), tuple(spans))
