"""Template lint: what Prefect Cloud would not run, common mistakes, fields requests lack."""

from __future__ import annotations

import dataclasses
import difflib
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from jinja2 import meta, nodes
from jinja2.filters import FILTERS as JINJA_FILTERS

from hooklab.core.request import BodyError, HookRequest, template_context
from hooklab.core.skeleton import (
    Expression,
    is_label,
    literal_labels,
    placed,
    quoted_string,
    skeleton,
)
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

    level: str  # "error" | "warning" | "note" (fragile, not wrong: not counted as a problem)
    line: int | None
    message: str
    extension: bool = False
    place: str = ""  # where on the line, to tell apart findings said word for word twice

    @property
    def is_problem(self) -> bool:
        """An error or a warning; a note is not counted against a template."""
        return self.level != "note"

    def __str__(self) -> str:
        where = f"line {self.line}: " if self.line else ""
        tag = " [hooklab extension]" if self.extension else ""
        return f"{self.level}: {where}{self.message}{tag}"


CLEAN = "compatible with Prefect Cloud; no common mistakes found"


def clean_summary(findings: Sequence[Finding]) -> str:
    """The line said when nothing is an error or a warning: with notes, it counts them rather
    than saying that nothing was found right above them."""
    notes = sum(1 for f in findings if not f.is_problem)
    if not notes:
        return CLEAN
    return f"compatible with Prefect Cloud; {notes} note{'' if notes == 1 else 's'}"


def check_lines(findings: list[Finding]) -> list[str]:
    """The check as people read it: the errors and warnings, or that there are none, then the
    notes."""
    problems = [str(f) for f in findings if f.is_problem]
    notes = [str(f) for f in findings if not f.is_problem]
    return (problems or [clean_summary(findings)]) + notes


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
    return _grouped(sorted(findings, key=lambda f: (f.line or 0, f.message)))


def _grouped(findings: list[Finding]) -> list[Finding]:
    """Findings said word for word more than once on a line, said once, naming where."""
    groups: dict[Finding, list[str]] = {}
    for finding in findings:
        groups.setdefault(dataclasses.replace(finding, place=""), []).append(finding.place)
    grouped = []
    for finding, places in groups.items():
        if len(places) > 1:
            named = " and ".join(place for place in places if place) or "more than one place"
            message = f"{finding.message} ({len(places)} times on this line: {named})"
            finding = dataclasses.replace(finding, message=message)
        grouped.append(finding)
    return grouped


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


def _skeleton_findings(template: str) -> Iterator[Finding]:
    """Mistakes seen by reading the template as JSON with each `{{ }}` as a placeholder."""
    text, expressions = skeleton(template)
    lines = template.splitlines()
    for placement in placed(text, expressions):
        expression, key_path = placement.expression, placement.key_path
        shown = "{{ " + expression.source + " }}"
        if expression.bare_name in DICT_VARIABLES:
            yield Finding(
                "warning",
                expression.line,
                f"{shown} renders a Python repr (single quotes), not JSON; "
                f"use {{{{ {expression.bare_name}|tojson }}}}",
            )
        if placement.place == "string" and "tojson" in expression.filters:
            yield Finding(
                "warning",
                expression.line,
                f"{shown} is inside quotes: tojson already adds them, so a string comes out "
                "double-quoted and the JSON breaks; remove the quotes around it",
            )
        elif placement.place == "string" and writes_request_text(expression):
            line_text = lines[expression.line - 1] if expression.line <= len(lines) else ""
            note = _quoted_text_note(line_text, expression)
            place = ".".join(key_path) or "the top"
            yield Finding("note", expression.line, note, place=f"at {place}")
        if placement.place == "value" and is_label(key_path) and "tojson" not in expression.filters:
            yield Finding(
                "warning",
                expression.line,
                f"the label '{key_path[-1]}' is an unquoted {shown}: labels must be strings, "
                "so a number or true/false is rejected; write "
                f"{{{{ {_unquoted_tojson(expression.source)} }}}}",
            )
    for line, label_path, literal in literal_labels(text, template):
        yield Finding(
            "warning",
            line,
            f"the label '{label_path[-1]}' is {literal}, not a string: labels must be strings; "
            f'write "{literal}"',
        )


def _unquoted_tojson(source: str) -> str:
    """`source` written as a JSON string whatever it holds: text first, then tojson (quoting
    it instead breaks on a quote or a backslash in it)."""
    simple = re.fullmatch(r"[A-Za-z_][\w.]*(?:\[[^\[\]]*\])*", source)
    return f"{source if simple else f'({source})'}|string|tojson"


# Filters whose output cannot hold a quote, a backslash or a control character.
_SAFE_IN_QUOTES = frozenset(
    {"int", "float", "length", "count", "abs", "round", "urlencode", "wordcount", "tojson"}
)


def writes_request_text(expression: Expression) -> bool:
    """True when an expression writes text a sender chose (from body, headers or query) as it
    is: a quote, a backslash or a line break in it would come out unescaped."""
    if not set(expression.names) & set(DICT_VARIABLES):
        return False
    return not any(
        name in _SAFE_IN_QUOTES or name.startswith("humanize_") for name in expression.filters
    )


def _quoted_text_note(line_text: str, expression: Expression) -> str:
    """Prefect's examples write request text inside quotes; it works until a sender's text
    holds a quote, a backslash or a line break. A note, not a warning: the pattern is common
    and often safe (ids, slugs), and the fix is one line."""
    found = quoted_string(line_text, expression)
    if found is None:
        written = f"{{{{ {expression.source} }}}} inside quotes"
        instead = f"{{{{ {expression.source}|tojson }}}} without the quotes"
    else:
        start, end, instead = found
        written = line_text[start:end]
    return (
        f"{written} writes {expression.source} into a JSON string unescaped, as Prefect's "
        "examples do: a quote, a backslash or a line break in it makes the output invalid "
        f"JSON (a 400 and a failed event). Where senders may send such text, write {instead}"
    )


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
            label = path_label(root, keys)
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


def path_label(root: str, keys: tuple[Any, ...]) -> str:
    """A field as a template reads it: `body.customer.id`, `headers['X-Shop']`."""
    parts = [root]
    for key in keys:
        if isinstance(key, str) and _IDENTIFIER.match(key):
            parts.append(f".{key}")
        else:
            parts.append(f"[{key!r}]")
    return "".join(parts)


def _lookup(value: Any, keys: tuple[Any, ...]) -> bool:
    return value_at(value, keys, _NOWHERE) is not _NOWHERE


_NOWHERE = object()


def value_at(value: Any, keys: tuple[Any, ...], default: Any = None) -> Any:
    """What a request's value holds at `keys`, or `default` where it holds nothing."""
    for key in keys:
        if not _has(value, key):
            return default
        value = value[key]
    return value


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
        for label, (root, keys) in ((path_label(r, k), (r, k)) for r, k in paths):
            if not _lookup(context[root], keys):
                rows.append((request.id, request.received, label, None))
    frame = pd.DataFrame(rows, columns=["request_id", "received", "field", "error"])
    frame["received"] = pd.to_datetime(frame["received"], utc=True)
    return frame


def missing_from_all(template: str, requests: Sequence[HookRequest]) -> dict[str, str | None]:
    """The fields the template reads that none of `requests` has (none when there are no
    readable requests), each with the closest name the requests do have there, if any: what
    a misspelt field (`body.orderId` for `body.order_id`) looks like."""
    contexts = []
    for request in requests:
        try:
            contexts.append(template_context(request).as_dict())
        except BodyError:
            continue
    found: dict[str, str | None] = {}
    if not contexts:
        return found
    for root, keys in referenced_fields(template):
        if not keys or any(_lookup(context[root], keys) for context in contexts):
            continue
        found[path_label(root, keys)] = _closest(root, keys, contexts)
    return found


def _closest(root: str, keys: tuple[Any, ...], contexts: list[dict[str, Any]]) -> str | None:
    names: set[str] = set()
    for context in contexts:
        parent = value_at(context[root], keys[:-1], None)
        if isinstance(parent, Mapping):
            names.update(str(name) for name in parent)
    close = difflib.get_close_matches(str(keys[-1]), sorted(names), n=1, cutoff=0.6)
    if not close:
        lowered = {name.lower().replace("_", ""): name for name in names}
        match = lowered.get(str(keys[-1]).lower().replace("_", ""))
        close = [match] if match else []
    return path_label(root, (*keys[:-1], close[0])) if close else None


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
