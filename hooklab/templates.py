"""The sandboxed Jinja2 environment of Prefect's user templates, with hooklab's render budgets."""

from __future__ import annotations

import functools
import operator
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from jinja2 import ChainableUndefined, TemplateSyntaxError, nodes
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment

MAX_TEMPLATE_RANGE = 100
MAX_LOOP_COUNT = 10
MAX_NESTED_LOOP_DEPTH = 2
MAX_OUTPUT_BYTES = 1_500_000
MAX_RENDER_SECONDS = 1.0


class TemplateError(ValueError):
    """A template that cannot be saved or rendered; `lineno` points at the template line."""

    def __init__(self, message: str, lineno: int | None = None) -> None:
        self.message = message
        self.lineno = lineno
        where = f"line {lineno}: " if lineno else ""
        super().__init__(f"{where}{message}")


class RenderBudgetExceeded(TemplateError):
    """A render ran past its output-size or time budget."""


def _limited_range(*args: int) -> range:
    rng = range(*args)
    if len(rng) > MAX_TEMPLATE_RANGE:
        raise OverflowError(
            f"Range too big. The sandbox blocks ranges larger than MAX_TEMPLATE_RANGE={MAX_TEMPLATE_RANGE}."
        )
    return rng


class UserTemplateEnvironment(ImmutableSandboxedEnvironment):
    """Prefect's user-template sandbox, plus a guard on `*` and `**` so that one expression
    cannot allocate gigabytes before the output budget is ever checked."""

    intercepted_binops = frozenset({"*", "**"})

    def __init__(self) -> None:
        super().__init__(
            undefined=ChainableUndefined,
            extensions=["jinja2_humanize_extension.HumanizeExtension"],
        )
        self.globals["range"] = _limited_range
        # Imported here: the cloudevents SDK is only needed by templates that use the filter.
        from hooklab.cloudevents import from_cloud_event

        self.filters["from_cloud_event"] = from_cloud_event

    def call_binop(self, context: Any, operator_: str, left: Any, right: Any) -> Any:
        if operator_ == "*":
            for seq, count in ((left, right), (right, left)):
                if isinstance(seq, (str, bytes, list, tuple)) and isinstance(count, int):
                    if len(seq) * count > MAX_OUTPUT_BYTES:
                        raise OverflowError("Repetition too big for the template output budget.")
            return operator.mul(left, right)
        if operator_ == "**":
            if isinstance(right, int) and isinstance(left, int) and abs(right) > 1000:
                raise OverflowError("Exponent too big for the template sandbox.")
            return operator.pow(left, right)
        return super().call_binop(context, operator_, left, right)


ENVIRONMENT = UserTemplateEnvironment()


@dataclass(frozen=True)
class Template:
    """A checked, compiled template, ready to render many times."""

    source: str
    compiled: Any

    def render(
        self,
        context: dict[str, Any],
        *,
        max_output: int = MAX_OUTPUT_BYTES,
        max_seconds: float = MAX_RENDER_SECONDS,
        clock: Callable[[], float] = time.perf_counter,
    ) -> str:
        """Render, stopping as soon as the output or time budget is spent.

        Raises `TemplateError` with the template line for any Jinja, sandbox or budget error.
        """
        if not _maybe_template(self.source):
            return self.source
        started = clock()
        parts: list[str] = []
        size = 0
        try:
            for chunk in self.compiled.generate(context):
                parts.append(chunk)
                size += len(chunk)
                if size > max_output:
                    raise RenderBudgetExceeded(
                        f"Rendered output is larger than the limit of {max_output} bytes"
                    )
                if clock() - started > max_seconds:
                    raise RenderBudgetExceeded(
                        f"Rendering took longer than the limit of {max_seconds:g} s"
                    )
        except TemplateError:
            raise
        except Exception as exc:
            raise TemplateError(_describe(exc), _template_line(exc)) from None
        return "".join(parts)


def _maybe_template(source: str) -> bool:
    # Prefect returns text without expressions or statements as it is, comments included.
    return "{{" in source or "{%" in source


def _describe(exc: BaseException) -> str:
    kind = "Security error" if isinstance(exc, SecurityError) else type(exc).__name__
    text = " ".join(str(exc).split()) or kind
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
    return Template(source, compiled)


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
