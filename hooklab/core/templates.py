"""Templates: checked and compiled once, then rendered many times within their budgets.

The sandbox lives in `hooklab.core.sandbox` and the budgets in `hooklab.core.budget`; here a
template is compiled, its loops checked against Prefect's limits, and rendered by Jinja's own
compiled code. Before it is compiled, each list, tuple and dict the template writes as a literal
is handed to the sandbox to be weighed, and each `for` loop goes over its items through the
sandbox's clock; after, its `~` joins are measured before they join. What the pipeline needs to
know about a template is read from its syntax tree once, at compile time.

A template nested too deeply for Jinja's parser or Python's compiler (thousands of brackets,
operators or filters inside one another) is refused with its line, as "nested too deeply".
"""

from __future__ import annotations

import functools
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from jinja2 import Template as JinjaTemplate
from jinja2 import TemplateSyntaxError, nodes
from jinja2.exceptions import SecurityError

from hooklab.core.sandbox import (
    ACTIVE_GUARD,
    ENVIRONMENT,
    MAX_LOOP_COUNT,
    MAX_NESTED_LOOP_DEPTH,
    MAX_OUTPUT_BYTES,
    MAX_RENDER_SECONDS,
    MAX_TEMPLATE_RANGE,
    RenderBudgetExceeded,
    RenderGuard,
    TemplateError,
    budgeted_tree,
    end_render,
    measure_joins,
)

__all__ = [
    "ENVIRONMENT",
    "MAX_OUTPUT_BYTES",
    "MAX_RENDER_SECONDS",
    "MAX_TEMPLATE_RANGE",
    "NESTED_TOO_DEEPLY",
    "RenderBudgetExceeded",
    "Template",
    "TemplateError",
    "compile_template",
    "compile_transformed",
    "deepest_line",
]

# A filter whose output may be a JSON list: one event per CloudEvent of a batch (an extension).
_BATCH_FILTERS = frozenset({"from_cloud_event"})


@dataclass(frozen=True)
class Template:
    """A checked, compiled template, ready to render many times.

    Read from its syntax tree: `renders_batches`, the template uses a filter that may render
    a list of events (a CloudEvents batch); `loops`, it has `for` loops, so the budgets are
    checked after every chunk it writes. Without loops a template writes each part of its
    text once, so its chunks are joined as Jinja's `render` joins them, and measured once;
    every expression checks the budgets in the sandbox's hooks either way. `reads_globals`:
    it names one of the environment's globals (`range`, `namespace`, ...), which are then
    added to the variables it is rendered with.
    """

    source: str
    compiled: JinjaTemplate
    renders_batches: bool = False
    loops: bool = True
    reads_globals: bool = True
    # Prefect returns text without expressions or statements as it is, comments included.
    is_text: bool = field(init=False)
    _globals: dict[str, Any] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        is_text = "{{" not in self.source and "{%" not in self.source
        object.__setattr__(self, "is_text", is_text)
        # Jinja reads its globals (a ChainMap) twice for every render, which costs more than
        # rendering a small template; a plain dict with the same keys and values is made once.
        object.__setattr__(self, "_globals", dict(self.compiled.globals))

    def render(
        self,
        context: dict[str, Any],
        *,
        max_output: int = MAX_OUTPUT_BYTES,
        max_seconds: float = MAX_RENDER_SECONDS,
        clock: Callable[[], float] = time.perf_counter,
    ) -> str:
        """Render, stopping as soon as the output or time budget is spent.

        Text without `{{` or `{%` comes back as it is, as in Prefect. Raises `TemplateError`
        with the template line for any Jinja, sandbox or budget error.
        """
        if self.is_text:
            return self.source
        guard = RenderGuard(clock, max_seconds, max_output)
        token = ACTIVE_GUARD.set(guard)
        try:
            variables = {**self._globals, **context} if self.reads_globals else context
            return self._render(variables, guard)
        except TemplateError as exc:
            raise type(exc)(exc.message, exc.lineno or _template_line(exc)) from None
        except Exception as exc:
            raise TemplateError(_describe(exc), _template_line(exc)) from None
        finally:
            ACTIVE_GUARD.reset(token)
            end_render(guard)

    def _render(self, variables: dict[str, Any], guard: RenderGuard) -> str:
        """Jinja's `render`, on a context that shares the variables given (globals included)
        instead of copying them, within the budgets."""
        compiled = self.compiled
        environment = compiled.environment
        jinja_context = environment.context_class(
            environment, variables, compiled.name, compiled.blocks, globals=self._globals
        )
        chunks = compiled.root_render_func(jinja_context)
        limit = guard.max_output
        loops = self.loops
        parts: list[str] = []
        size = 0
        try:
            # Measured as it is written: the same value written many times is written whole
            # each time.
            for chunk in chunks:
                size += len(chunk)
                if size > limit:
                    break
                parts.append(chunk)
                if loops:
                    guard.tick()
        except Exception:
            # As in Jinja: raised again with the traceback pointing at template lines.
            environment.handle_exception()
        if size > limit:
            raise RenderBudgetExceeded(f"Rendered output is larger than the limit of {limit} bytes")
        guard.tick()
        return "".join(parts)


NESTED_TOO_DEEPLY = "Nested too deeply: too many brackets, operators or filters inside one another"


def _describe(exc: BaseException) -> str:
    from hooklab.core.cloudevents import CloudEventError

    if isinstance(exc, RecursionError):
        return (
            "Nested too deeply to render: a value with too many levels, or a macro or loop "
            "that calls itself without end"
        )
    if isinstance(exc, ValueError) and "set_int_max_str_digits" in str(exc):
        return (
            f"A number in the template has more than {sys.get_int_max_str_digits()} digits, "
            "more than can be written as text"
        )
    kind = "Security error" if isinstance(exc, SecurityError) else type(exc).__name__
    text = " ".join(str(exc).split()) or kind
    if isinstance(exc, CloudEventError):
        return text
    return f"{kind}: {text}" if kind not in text else text


def _template_line(exc: BaseException) -> int | None:
    """The template line of a render error, found in the traceback frames Jinja rewrote."""
    lineno = getattr(exc, "lineno", None)
    if lineno:
        return int(lineno)
    tb = exc.__traceback__
    found: int | None = None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "<template>":
            found = tb.tb_lineno
        tb = tb.tb_next
    return found


@functools.lru_cache(maxsize=512)
def compile_template(source: str) -> Template:
    """Check and compile a template: syntax, then Prefect's loop limits.

    >>> compile_template('{"event": "{{ method }}"}').source
    '{"event": "{{ method }}"}'

    Raises `TemplateError` with the line number of the problem.
    """
    return compile_transformed(source)


def compile_transformed(
    source: str, transform: Callable[[nodes.Template], nodes.Template] | None = None
) -> Template:
    """`compile_template` without its cache, the syntax tree changed by `transform` before
    it is compiled: how `hooklab.core.tracing` marks where each part of the output comes from."""
    try:
        return _compile(source, transform)
    except TemplateSyntaxError as exc:
        raise TemplateError(f"Template syntax error: {exc.message}", exc.lineno) from None
    except (RecursionError, SyntaxError, MemoryError):
        # Jinja's parser and Python's compiler recurse once for each level of nesting; Python's
        # compiler also refuses more than 200 brackets inside one another.
        raise TemplateError(NESTED_TOO_DEEPLY, deepest_line(source)) from None


def _compile(
    source: str, transform: Callable[[nodes.Template], nodes.Template] | None = None
) -> Template:
    tree = ENVIRONMENT.parse(source)
    _check_loops(tree)
    if transform is not None:
        tree = transform(tree)
    renders_batches = _uses_filters(tree, _BATCH_FILTERS)
    loops = tree.find(nodes.For) is not None
    reads_globals = any(node.name in ENVIRONMENT.globals for node in tree.find_all(nodes.Name))
    compiled = measure_joins(ENVIRONMENT.from_string(budgeted_tree(tree)))
    return Template(
        source, compiled, renders_batches=renders_batches, loops=loops, reads_globals=reads_globals
    )


_OPENING = frozenset("([{")
_CLOSING = frozenset(")]}")
_BLOCK_ENDS = frozenset({"variable_end", "block_end"})


def deepest_line(source: str) -> int | None:
    """The line where a template nests deepest: brackets open, plus operators and filters
    chained in one expression. Read from Jinja's lexer, which does not recurse."""
    depth = chained = 0
    deepest, line = -1, None
    try:
        for lineno, kind, value in ENVIRONMENT.lex(source):
            if kind in _BLOCK_ENDS:
                depth = chained = 0
            elif kind == "operator":
                if value in _OPENING:
                    depth += 1
                elif value in _CLOSING:
                    depth -= 1
                else:
                    chained += 1
            elif kind == "name" and value == "not":
                chained += 1
            if depth + chained > deepest:
                deepest, line = depth + chained, lineno
    except TemplateSyntaxError as exc:
        return line or exc.lineno
    return line


def _uses_filters(tree: nodes.Template, names: frozenset[str]) -> bool:
    """True when the template applies any of these filters, in an expression or a block."""
    return any(node.name in names for node in tree.find_all(nodes.Filter))


def _check_loops(tree: nodes.Template) -> None:
    loops = list(tree.find_all(nodes.For))
    if not loops:
        return
    if len(loops) > MAX_LOOP_COUNT:
        raise TemplateError(
            f"Contains {len(loops)} for loops. Templates can contain no more than "
            f"{MAX_LOOP_COUNT} for loops.",
            loops[MAX_LOOP_COUNT].lineno,
        )
    for loop in loops:
        depth, deepest = _nesting(loop)
        if depth > MAX_NESTED_LOOP_DEPTH:
            raise TemplateError(
                f"Contains nested for loops at a depth of {depth}. Templates can nest for loops "
                f"no more than {MAX_NESTED_LOOP_DEPTH} loops deep.",
                deepest.lineno,
            )


def _nesting(node: nodes.Node, depth: int = 0) -> tuple[int, nodes.Node]:
    if isinstance(node, nodes.For):
        depth += 1
    best: tuple[int, nodes.Node] = (depth, node)
    for child in node.iter_child_nodes():
        found = _nesting(child, depth)
        if found[0] > best[0]:
            best = found
    return best
