"""Templates: checked and compiled once, then rendered many times within their budgets.

The sandbox and the budgets live in `hooklab.core.sandbox`; here a template is compiled, its
loops checked against Prefect's limits, and rendered by Jinja's own compiled code. What the
pipeline needs to know about a template is read from its syntax tree once, at compile time.
"""

from __future__ import annotations

import functools
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
)

__all__ = [
    "ENVIRONMENT",
    "MAX_OUTPUT_BYTES",
    "MAX_RENDER_SECONDS",
    "MAX_TEMPLATE_RANGE",
    "RenderBudgetExceeded",
    "Template",
    "TemplateError",
    "compile_template",
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
        try:
            if not self.loops:
                text = "".join(chunks)
            else:
                parts: list[str] = []
                size = 0
                for chunk in chunks:
                    parts.append(chunk)
                    size += len(chunk)
                    if size > limit:
                        break
                    guard.tick()
                text = "".join(parts)
        except Exception:
            # As in Jinja: raised again with the traceback pointing at template lines.
            environment.handle_exception()
        if len(text) > limit:
            raise RenderBudgetExceeded(f"Rendered output is larger than the limit of {limit} bytes")
        guard.tick()
        return text


def _describe(exc: BaseException) -> str:
    from hooklab.core.cloudevents import CloudEventError

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
    try:
        tree = ENVIRONMENT.parse(source)
    except TemplateSyntaxError as exc:
        raise TemplateError(f"Template syntax error: {exc.message}", exc.lineno) from None
    _check_loops(tree)
    try:
        compiled = ENVIRONMENT.from_string(tree)
    except TemplateSyntaxError as exc:
        raise TemplateError(f"Template syntax error: {exc.message}", exc.lineno) from None
    return Template(
        source,
        compiled,
        renders_batches=_uses_filters(tree, _BATCH_FILTERS),
        loops=tree.find(nodes.For) is not None,
        reads_globals=any(node.name in ENVIRONMENT.globals for node in tree.find_all(nodes.Name)),
    )


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
