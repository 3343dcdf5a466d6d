"""Template lint: what Prefect Cloud would not run, common mistakes, fields requests lack."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from jinja2 import TemplateSyntaxError, meta, nodes
from jinja2.filters import FILTERS as JINJA_FILTERS

from hooklab.core.request import BodyError, template_context
from hooklab.core.templates import (
    ENVIRONMENT,
    NESTED_TOO_DEEPLY,
    TemplateError,
    compile_template,
    deepest_line,
)
from hooklab.history.sources import Requests, requests_with_webhooks

if TYPE_CHECKING:
    import pandas as pd

PREFECT_VARIABLES = frozenset({"method", "headers", "body"})
EXTENSION_VARIABLES = frozenset({"query"})
DICT_VARIABLES = ("body", "headers", "query")
# Prefect's sandbox: Jinja's builtin filters, the humanize extension's, and from_cloud_event.
PREFECT_FILTERS = frozenset(JINJA_FILTERS) | {"from_cloud_event"}
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
QUOTED_LINE_LIMIT = 200  # characters of a template line shown under an error


@dataclass(frozen=True)
class Finding:
    """One thing the lint noticed. `extension` marks what works in hooklab but not Prefect Cloud."""

    level: str  # "error" | "warning"
    line: int | None
    message: str
    extension: bool = False

    def __str__(self) -> str:
        where = f"line {self.line}: " if self.line else ""
        tag = " [hooklab extension]" if self.extension else ""
        return f"{self.level}: {where}{self.message}{tag}"


def quote_line(template: str, line: int | None) -> str:
    """The template line an error names, to show under the error; "" when it names none.

    >>> quote_line('{"event": "{{ body.x }"}', 1)
    '  1 | {"event": "{{ body.x }"}'
    """
    lines = template.splitlines()
    if line is None or not 0 < line <= len(lines):
        return ""
    text = lines[line - 1]
    if len(text) > QUOTED_LINE_LIMIT:
        text = text[: QUOTED_LINE_LIMIT - 3] + "..."
    return f"  {line} | {text}"


def hooklab_only_filters() -> frozenset[str]:
    """Filters hooklab's environment has that Prefect Cloud's does not."""
    names = {name for name in ENVIRONMENT.filters if not name.startswith("humanize_")}
    return frozenset(names - PREFECT_FILTERS)


def check_template(template: str) -> list[Finding]:
    """The compatibility check of SPEC 9, plus common mistakes, ordered by line.

    >>> [f.extension for f in check_template('{"event": "{{ query.kind }}"}')]
    [True]
    """
    try:
        compile_template(template)
        tree = ENVIRONMENT.parse(template)
        findings = [*_extensions(tree), *_undefined_names(tree), *_skeleton_findings(template)]
    except TemplateError as exc:
        return [Finding("error", exc.lineno, exc.message)]
    except RecursionError:  # compiled, but nested too deeply to read again from deeper down
        return [Finding("error", deepest_line(template), NESTED_TOO_DEEPLY)]
    return sorted(findings, key=lambda f: (f.line or 0, f.message))


def _extensions(tree: nodes.Template) -> Iterator[Finding]:
    for name in sorted(meta.find_undeclared_variables(tree) & EXTENSION_VARIABLES):
        yield Finding(
            "warning",
            _first_line(tree, name),
            f"'{name}' is a hooklab extension; Prefect Cloud's templates see only method, "
            "headers and body",
            extension=True,
        )
    extra = hooklab_only_filters()
    for node in tree.find_all(nodes.Filter):
        if node.name in extra:
            yield Finding(
                "warning",
                node.lineno,
                f"the filter '{node.name}' is a hooklab extension",
                extension=True,
            )


def _undefined_names(tree: nodes.Template) -> Iterator[Finding]:
    known = PREFECT_VARIABLES | EXTENSION_VARIABLES | set(ENVIRONMENT.globals)
    for name in sorted(meta.find_undeclared_variables(tree) - known):
        yield Finding(
            "warning",
            _first_line(tree, name),
            f"'{name}' is not defined: it renders as empty text (templates see method, headers "
            "and body)",
        )


def _first_line(tree: nodes.Template, name: str) -> int | None:
    lines = [node.lineno for node in tree.find_all(nodes.Name) if node.name == name]
    return min(lines) if lines else None


@dataclass(frozen=True)
class _Expression:
    """One `{{ ... }}` of the template: where it is and what it does."""

    line: int
    source: str
    filters: tuple[str, ...]
    bare_name: str | None


def _skeleton_findings(template: str) -> Iterator[Finding]:
    """Mistakes seen by reading the template as JSON with each `{{ }}` as a placeholder."""
    skeleton, expressions = _skeleton(template)
    for place, key_path, expression in _placements(skeleton, expressions):
        shown = "{{ " + expression.source + " }}"
        if expression.bare_name in DICT_VARIABLES:
            yield Finding(
                "warning",
                expression.line,
                f"{shown} renders a Python repr (single quotes), not JSON; "
                f"use {{{{ {expression.bare_name}|tojson }}}}",
            )
        if place == "string" and "tojson" in expression.filters:
            yield Finding(
                "warning",
                expression.line,
                f"{shown} is inside quotes: tojson already adds them, so a string comes out "
                "double-quoted and the JSON breaks; remove the quotes around it",
            )
        if place == "value" and _is_label(key_path) and "tojson" not in expression.filters:
            yield Finding(
                "warning",
                expression.line,
                f"the label '{key_path[-1]}' is an unquoted {shown}: labels must be strings, "
                f'so a number or true/false is rejected; write "{shown}"',
            )
    for line, key_path, literal in _literal_labels(skeleton, template):
        yield Finding(
            "warning",
            line,
            f"the label '{key_path[-1]}' is {literal}, not a string: labels must be strings; "
            f'write "{literal}"',
        )


_MARK = "\x00"


def _skeleton(template: str) -> tuple[str, list[_Expression]]:
    """The template's text with every `{{ }}` as one mark character and every `{% %}` dropped."""
    out: list[str] = []
    expressions: list[_Expression] = []
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
            out.append(_MARK)
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


def _expression(end_line: int, tokens: list[tuple[int, str, str]]) -> _Expression:
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
    return _Expression(line, source, filters, bare)


def _placements(
    skeleton: str, expressions: list[_Expression]
) -> Iterator[tuple[str, list[str], _Expression]]:
    """For each mark: "string" (inside quotes) or "value" (bare), with the JSON key path there."""
    marks = iter(expressions)
    for index, char, in_string, key_path in _scan(skeleton):
        if char == _MARK:
            expression = next(marks, None)
            if expression is not None:
                yield ("string" if in_string else "value"), key_path, expression
        del index


def _literal_labels(skeleton: str, template: str) -> Iterator[tuple[int | None, list[str], str]]:
    literal = re.compile(r"-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?|true|false")
    for index, char, in_string, key_path in _scan(skeleton):
        if in_string or not _is_label(key_path) or not (char.isdigit() or char in "-tf"):
            continue
        previous = skeleton[:index].rstrip()
        if not previous.endswith(":"):
            continue
        match = literal.match(skeleton, index)
        if match:
            text = match.group(0)
            yield _line_of(template, text, key_path[-1]), key_path, text


def _line_of(template: str, literal: str, label: str) -> int | None:
    pattern = re.compile(rf'"{re.escape(label)}"\s*:\s*{re.escape(literal)}')
    found = pattern.search(template)
    return template.count("\n", 0, found.start()) + 1 if found else None


def _is_label(key_path: list[str]) -> bool:
    """A value directly inside `resource`, or inside one of the `related` resources."""
    if len(key_path) == 2 and key_path[0] == "resource":
        return True
    return len(key_path) == 3 and key_path[0] == "related" and key_path[1] == "[]"


def _scan(skeleton: str) -> Iterator[tuple[int, str, bool, list[str]]]:
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

    for index, char in enumerate(skeleton):
        if in_string:
            if char == _MARK:
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


# Which fields of the requests a template reads, and which requests lack them.

_ROOTS = frozenset(DICT_VARIABLES)


def referenced_fields(template: str) -> list[tuple[str, tuple[Any, ...]]]:
    """The `body.x`, `headers['X']` and `query.y` paths a template reads, in order of appearance;
    none for a template that does not compile (its error says why, wherever it is used)."""
    found: dict[str, tuple[str, tuple[Any, ...]]] = {}
    try:
        compile_template(template)
        _collect_paths(ENVIRONMENT.parse(template), found, parent_extends=False)
    except (TemplateError, RecursionError):
        return []
    return list(found.values())


def _collect_paths(node: nodes.Node, found: dict[str, Any], *, parent_extends: bool) -> None:
    if isinstance(node, (nodes.Getattr, nodes.Getitem)):
        chain = _chain(node)
        if chain is not None and not parent_extends:
            root, keys = chain
            label = _path_label(root, keys)
            found.setdefault(label, (root, keys))
        for child in node.iter_child_nodes():
            extends = child is node.node
            _collect_paths(child, found, parent_extends=extends)
        return
    for child in node.iter_child_nodes():
        _collect_paths(child, found, parent_extends=False)


def _chain(node: nodes.Node) -> tuple[str, tuple[Any, ...]] | None:
    keys: list[Any] = []
    while isinstance(node, (nodes.Getattr, nodes.Getitem)):
        if isinstance(node, nodes.Getattr):
            keys.append(node.attr)
        elif isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, (str, int)):
            keys.append(node.arg.value)
        else:
            return None
        node = node.node
    if isinstance(node, nodes.Name) and node.name in _ROOTS:
        return node.name, tuple(reversed(keys))
    return None


def _path_label(root: str, keys: tuple[Any, ...]) -> str:
    parts = [root]
    for key in keys:
        if isinstance(key, str) and _IDENTIFIER.match(key):
            parts.append(f".{key}")
        else:
            parts.append(f"[{key!r}]")
    return "".join(parts)


def _lookup(value: Any, keys: tuple[Any, ...]) -> bool:
    for key in keys:
        if not _has(value, key):
            return False
        value = value[key]
    return True


def _has(value: Any, key: Any) -> bool:
    if isinstance(value, list):
        return isinstance(key, int) and -len(value) <= key < len(value)
    return isinstance(value, Mapping) and key in value


def missing_fields(template: str, requests: Requests) -> pd.DataFrame:
    """Which referenced fields are missing from which requests: one row per (request, field).

    Columns: `request_id`, `received`, `field`. A request whose body cannot be read at all is
    reported once, with field `body` and the reason in `error`.
    """
    import pandas as pd

    paths = referenced_fields(template)
    rows: list[tuple[str, Any, str, str | None]] = []
    for request, _webhook in requests_with_webhooks(requests):
        try:
            context = template_context(request).as_dict()
        except BodyError as exc:
            rows.append((request.id, request.received, "body", str(exc)))
            continue
        for label, (root, keys) in ((_path_label(r, k), (r, k)) for r, k in paths):
            if not _lookup(context[root], keys):
                rows.append((request.id, request.received, label, None))
    frame = pd.DataFrame(rows, columns=["request_id", "received", "field", "error"])
    frame["received"] = pd.to_datetime(frame["received"], utc=True)
    return frame


@dataclass(frozen=True)
class HeadersRead:
    """Which request headers a template reads: by name (lowercased), by prefix (`ce-`, for a
    CloudEvent in binary mode), or all of them (`everything`: the mapping used whole)."""

    names: frozenset[str] = frozenset()
    prefixes: tuple[str, ...] = ()
    everything: bool = False

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        lowered = name.lower()
        return self.everything or lowered in self.names or lowered.startswith(self.prefixes)


_MAPPING_METHODS = frozenset({"get", "items", "keys", "values", "to_dict", "stored"})


def headers_read(template: str) -> HeadersRead:
    """The headers a template reads: `headers['X']`, `headers.x` and `headers.get('X')` by
    name; `from_cloud_event(headers)` its `ce-` headers and the content type; any other use of
    the mapping (`headers|tojson`, a loop over it, a key computed) reads them all."""
    try:
        compile_template(template)
        tree = ENVIRONMENT.parse(template)
    except (TemplateError, RecursionError):
        return HeadersRead(everything=True)
    names: set[str] = set()
    prefixes: set[str] = set()
    pending: list[tuple[nodes.Node, tuple[nodes.Node, ...]]] = [(tree, ())]
    while pending:
        node, above = pending.pop()
        pending.extend((child, (node, *above[:1])) for child in node.iter_child_nodes())
        if not (isinstance(node, nodes.Name) and node.name == "headers" and node.ctx == "load"):
            continue
        name = _header_named(node, above)
        if name is not None:
            names.add(name.lower())
        elif isinstance(above[0], nodes.Filter) and above[0].name == "from_cloud_event":
            prefixes.add("ce-")
            names.add("content-type")
        else:
            return HeadersRead(everything=True)
    return HeadersRead(frozenset(names), tuple(sorted(prefixes)))


def _header_named(node: nodes.Name, above: tuple[nodes.Node, ...]) -> str | None:
    """The header a use of `headers` names, if it names one (with a constant)."""
    parent = above[0] if above else None
    if isinstance(parent, nodes.Getitem) and parent.node is node:
        constant = parent.arg
        return (
            constant.value
            if isinstance(constant, nodes.Const) and isinstance(constant.value, str)
            else None
        )
    if isinstance(parent, nodes.Getattr) and parent.node is node:
        if parent.attr not in _MAPPING_METHODS:
            return parent.attr
        call = above[1] if len(above) > 1 else None
        if parent.attr == "get" and isinstance(call, nodes.Call) and call.node is parent:
            first = call.args[0] if call.args else None
            if isinstance(first, nodes.Const) and isinstance(first.value, str):
                return first.value
    return None
