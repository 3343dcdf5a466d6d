"""The sandboxed Jinja2 environment of Prefect's user templates, with hooklab's render budgets."""

from __future__ import annotations

import functools
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, cast

from jinja2 import ChainableUndefined, TemplateSyntaxError, nodes
from jinja2.exceptions import SecurityError
from jinja2.runtime import new_context
from jinja2.sandbox import ImmutableSandboxedEnvironment

from hooklab.core.simple_templates import Plan, plan_for

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
            "Range too big. The sandbox blocks ranges larger than "
            f"MAX_TEMPLATE_RANGE={MAX_TEMPLATE_RANGE}."
        )
    return rng


class _RenderGuard:
    """The budgets of the render in progress, checked from the sandbox's hooks, so that a
    template that loops without writing anything runs out of time as well."""

    def __init__(self, clock: Callable[[], float], max_seconds: float, max_output: int) -> None:
        self.clock = clock
        self.max_seconds = max_seconds
        self.max_output = max_output
        self.started = clock()

    def tick(self) -> None:
        if self.clock() - self.started > self.max_seconds:
            raise RenderBudgetExceeded(
                f"Rendering took longer than the limit of {self.max_seconds:g} s"
            )

    def check_size(self, value: Any) -> Any:
        if isinstance(value, int) and value.bit_length() > MAX_INT_BITS:
            raise RenderBudgetExceeded("A number in the template grew too big")
        if isinstance(value, (str, bytes, list, tuple, dict)) and len(value) > self.max_output:
            raise RenderBudgetExceeded(
                f"A value in the template grew larger than the limit of {self.max_output} bytes"
            )
        return value

    def check_width(self, width: Any) -> None:
        # Padding and repetition allocate `width` characters before anything is written.
        if isinstance(width, int) and width > self.max_output:
            raise RenderBudgetExceeded(
                f"A width or length of {width} is larger than the output limit of "
                f"{self.max_output} bytes"
            )


MAX_INT_BITS = 100_000
_UNGUARDED = _RenderGuard(lambda: 0.0, float("inf"), MAX_OUTPUT_BYTES)
_GUARD: ContextVar[_RenderGuard] = ContextVar("hooklab_render_guard", default=_UNGUARDED)
_WIDE_NUMBER = re.compile(r"\d{7,}")
_PADDING_METHODS = frozenset({"center", "ljust", "rjust", "zfill", "expandtabs"})


def _check_format(guard: _RenderGuard, fmt: str, args: Any) -> None:
    """Refuse `%` and `str.format` field widths that would blow the output budget."""
    for digits in _WIDE_NUMBER.findall(fmt):
        guard.check_width(int(digits))
    if "*" in fmt:
        for arg in args if isinstance(args, tuple) else (args,):
            guard.check_width(arg)


def _check_replace(guard: _RenderGuard, text: Any, old: Any, new: Any) -> None:
    if isinstance(text, str) and isinstance(old, str) and isinstance(new, str):
        count = text.count(old) if old else len(text) + 1
        guard.check_width(len(text) + count * max(0, len(new) - len(old)))


def _check_str_method(guard: _RenderGuard, method: Any, args: tuple[Any, ...]) -> None:
    # The sandbox hands out `str.format` wrapped; the wrapper keeps the method as __wrapped__.
    method = getattr(method, "__wrapped__", method)
    owner = getattr(method, "__self__", None)
    if not isinstance(owner, str):
        return
    name = getattr(method, "__name__", "")
    if name in _PADDING_METHODS:
        for arg in args:
            guard.check_width(arg)
    elif name == "replace" and len(args) >= 2:
        _check_replace(guard, owner, args[0], args[1])
    elif name in {"format", "format_map"}:
        _check_format(guard, owner, args)


def _guard_filters(filters: dict[str, Any]) -> None:
    """Wrap the built-in filters that can allocate far more than their input."""

    def padding(original: Callable[..., Any]) -> Callable[..., Any]:
        def guarded(value: Any, *args: Any, **kwargs: Any) -> Any:
            guard = _GUARD.get()
            for arg in (*args, *kwargs.values()):
                guard.check_width(arg)
            return original(value, *args, **kwargs)

        return guarded

    def replace(original: Callable[..., Any]) -> Callable[..., Any]:
        def guarded(eval_ctx: Any, value: Any, old: Any, new: Any, count: Any = None) -> Any:
            _check_replace(_GUARD.get(), str(value), str(old), str(new))
            return original(eval_ctx, value, old, new, count)

        guarded.jinja_pass_arg = original.jinja_pass_arg  # type: ignore[attr-defined]
        return guarded

    def format_(original: Callable[..., Any]) -> Callable[..., Any]:
        def guarded(value: Any, *args: Any, **kwargs: Any) -> Any:
            _check_format(_GUARD.get(), str(value), (*args, *kwargs.values()))
            return original(value, *args, **kwargs)

        return guarded

    def join(original: Callable[..., Any]) -> Callable[..., Any]:
        def guarded(eval_ctx: Any, value: Any, d: Any = "", attribute: Any = None) -> Any:
            items = list(value)  # an iterator is read once here, then handed on as a list
            if attribute is None:
                sizes = (len(x) if isinstance(x, str) else len(str(x)) for x in items)
                _GUARD.get().check_width(sum(sizes) + len(str(d)) * max(0, len(items) - 1))
            return original(eval_ctx, items, d, attribute)

        guarded.jinja_pass_arg = original.jinja_pass_arg  # type: ignore[attr-defined]
        return guarded

    for name in ("center", "indent", "wordwrap"):
        filters[name] = padding(filters[name])
    filters["replace"] = replace(filters["replace"])
    filters["format"] = format_(filters["format"])
    filters["join"] = join(filters["join"])


def _guarded_lipsum(original: Callable[..., str]) -> Callable[..., str]:
    # Jinja's own parameter names, so that keyword calls such as lipsum(2, max=50) still work.
    def guarded(n: int = 5, html: bool = True, min: int = 20, max: int = 100) -> str:
        # Each paragraph has up to `max` words of up to a dozen characters.
        if isinstance(n, int) and isinstance(max, int):
            _GUARD.get().check_width(n * max * 12)
        return original(n, html, min, max)

    return guarded


def _mapping_as_dict(value: Any) -> Any:
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


class UserTemplateEnvironment(ImmutableSandboxedEnvironment):
    """Prefect's user-template sandbox, plus hooks that keep one render within its budgets:
    no expression may allocate far past the output limit, and a loop that writes nothing
    still runs out of time."""

    intercepted_binops = frozenset({"*", "**", "+", "%"})

    def __init__(self) -> None:
        super().__init__(
            undefined=ChainableUndefined,
            extensions=["jinja2_humanize_extension.HumanizeExtension"],
        )
        self.globals["range"] = _limited_range
        lipsum = cast(Callable[..., str], self.globals["lipsum"])
        self.globals["lipsum"] = _guarded_lipsum(lipsum)
        _guard_filters(self.filters)
        # Imported here: the cloudevents SDK is only needed by templates that use the filter.
        from hooklab.core.cloudevents import from_cloud_event

        self.filters["from_cloud_event"] = from_cloud_event
        # `{{ headers|tojson }}`: the headers mapping is not a dict, so json.dumps needs help.
        self.policies["json.dumps_kwargs"] = {"sort_keys": True, "default": _mapping_as_dict}

    def getattr(self, obj: Any, attribute: str) -> Any:
        guard = _GUARD.get()
        guard.tick()
        return guard.check_size(super().getattr(obj, attribute))

    def getitem(self, obj: Any, argument: Any) -> Any:
        guard = _GUARD.get()
        guard.tick()
        return guard.check_size(super().getitem(obj, argument))

    def call(
        __self,  # Jinja's own positional-only style, so no keyword argument can clash
        __context: Any,
        __obj: Any,
        *args: Any,
        **kwargs: Any,
    ) -> Any:
        guard = _GUARD.get()
        guard.tick()
        _check_str_method(guard, __obj, (*args, *kwargs.values()))
        return guard.check_size(super().call(__context, __obj, *args, **kwargs))

    def call_binop(self, context: Any, operator_: str, left: Any, right: Any) -> Any:
        guard = _GUARD.get()
        guard.tick()
        if operator_ == "*":
            for seq, count in ((left, right), (right, left)):
                if isinstance(seq, (str, bytes, list, tuple)) and isinstance(count, int):
                    guard.check_width(len(seq) * count)
        elif operator_ == "**":
            if isinstance(left, int) and isinstance(right, int) and abs(right) > 1000:
                raise OverflowError("Exponent too big for the template sandbox.")
        elif operator_ == "%" and isinstance(left, str):
            _check_format(guard, left, right)
        return guard.check_size(super().call_binop(context, operator_, left, right))


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

        Text without `{{` or `{%` comes back as it is, as in Prefect. Raises `TemplateError`
        with the template line for any Jinja, sandbox or budget error.
        """
        if not _maybe_template(self.source):
            return self.source
        guard = _RenderGuard(clock, max_seconds, max_output)
        token = _GUARD.set(guard)
        parts: list[str] = []
        size = 0
        try:
            for chunk in self._generate(context):
                parts.append(chunk)
                size += len(chunk)
                if size > max_output:
                    raise RenderBudgetExceeded(
                        f"Rendered output is larger than the limit of {max_output} bytes"
                    )
                guard.tick()
        except TemplateError as exc:
            raise type(exc)(exc.message, exc.lineno or _template_line(exc)) from None
        except Exception as exc:
            raise TemplateError(_describe(exc), _template_line(exc)) from None
        finally:
            _GUARD.reset(token)
        return "".join(parts)

    @functools.cached_property
    def _globals(self) -> dict[str, Any]:
        return dict(self.compiled.globals)

    @functools.cached_property
    def _plan(self) -> Plan | None:
        return plan_for(ENVIRONMENT.parse(self.source))

    def _generate(self, context: dict[str, Any]) -> Iterable[str]:
        """What Jinja's `generate(context)` yields: by a `Plan` for a template of text and
        lookups only (see `hooklab.core.simple_templates`), else by Jinja itself."""
        variables = {**self._globals, **context}
        plan = self._plan
        if plan is not None:
            try:
                chunks = plan.render(self.compiled.environment, variables, _GUARD.get())
            except Exception:
                pass  # Jinja's own run raises it again, with the template line
            else:
                return ["".join(chunks)]  # one chunk: the budgets see the same total
        return self._jinja(variables)

    def _jinja(self, variables: dict[str, Any]) -> Iterator[str]:
        """Jinja's `generate`, but Jinja reads its globals (a ChainMap) twice for every render,
        which costs more than rendering a small template; here they are copied once per
        template into a plain dict with the same keys and values."""
        compiled = self.compiled
        jinja_context = new_context(
            compiled.environment, compiled.name, compiled.blocks, variables, True, self._globals
        )
        try:
            yield from compiled.root_render_func(jinja_context)
        except Exception:
            # As in Jinja: re-raise with the traceback pointing at template lines.
            yield compiled.environment.handle_exception()


def _maybe_template(source: str) -> bool:
    # Prefect returns text without expressions or statements as it is, comments included.
    return "{{" in source or "{%" in source


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
