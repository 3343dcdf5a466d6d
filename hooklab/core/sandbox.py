"""The sandboxed Jinja2 environment of Prefect's user templates, with hooklab's render budgets.

The budgets are checked from the sandbox's own hooks (every attribute, item, call and operator),
so that no expression allocates far past the output limit and a loop that writes nothing still
runs out of time. The render in progress finds its budgets in a context variable.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from typing import Any, cast

from jinja2 import ChainableUndefined, pass_eval_context
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import missing
from markupsafe import Markup

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


class RenderGuard:
    """The budgets of the render in progress, checked from the sandbox's hooks, so that a
    template that loops without writing anything runs out of time as well."""

    __slots__ = ("clock", "deadline", "max_output", "max_seconds")

    def __init__(self, clock: Callable[[], float], max_seconds: float, max_output: int) -> None:
        self.clock = clock
        self.max_seconds = max_seconds
        self.max_output = max_output
        self.deadline = clock() + max_seconds

    def tick(self) -> None:
        if self.clock() > self.deadline:
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
_UNGUARDED = RenderGuard(lambda: 0.0, float("inf"), MAX_OUTPUT_BYTES)
ACTIVE_GUARD: ContextVar[RenderGuard] = ContextVar("hooklab_render_guard", default=_UNGUARDED)
_WIDE_NUMBER = re.compile(r"\d{7,}")
_PADDING_METHODS = frozenset({"center", "ljust", "rjust", "zfill", "expandtabs"})
# Every attribute `getattr` finds on a dict (those of dict and object); any other name is a key.
_DICT_ATTRIBUTES = frozenset(dir(dict))


def _check_format(guard: RenderGuard, fmt: str, args: Any) -> None:
    """Refuse `%` and `str.format` field widths that would blow the output budget."""
    for digits in _WIDE_NUMBER.findall(fmt):
        guard.check_width(int(digits))
    if "*" in fmt:
        for arg in args if isinstance(args, tuple) else (args,):
            guard.check_width(arg)


def _check_replace(guard: RenderGuard, text: Any, old: Any, new: Any) -> None:
    if isinstance(text, str) and isinstance(old, str) and isinstance(new, str):
        count = text.count(old) if old else len(text) + 1
        guard.check_width(len(text) + count * max(0, len(new) - len(old)))


def _check_str_method(guard: RenderGuard, method: Any, args: tuple[Any, ...]) -> None:
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
            guard = ACTIVE_GUARD.get()
            for arg in (*args, *kwargs.values()):
                guard.check_width(arg)
            return original(value, *args, **kwargs)

        return guarded

    def replace(original: Callable[..., Any]) -> Callable[..., Any]:
        def guarded(eval_ctx: Any, value: Any, old: Any, new: Any, count: Any = None) -> Any:
            # Replacing text by no longer text cannot grow it: nothing to measure.
            if not (type(old) is str and type(new) is str and len(new) <= len(old)):
                _check_replace(ACTIVE_GUARD.get(), str(value), str(old), str(new))
            return original(eval_ctx, value, old, new, count)

        guarded.jinja_pass_arg = original.jinja_pass_arg  # type: ignore[attr-defined]
        return guarded

    def format_(original: Callable[..., Any]) -> Callable[..., Any]:
        def guarded(value: Any, *args: Any, **kwargs: Any) -> Any:
            _check_format(ACTIVE_GUARD.get(), str(value), (*args, *kwargs.values()))
            return original(value, *args, **kwargs)

        return guarded

    def join(original: Callable[..., Any]) -> Callable[..., Any]:
        def guarded(eval_ctx: Any, value: Any, d: Any = "", attribute: Any = None) -> Any:
            items = list(value)  # an iterator is read once here, then handed on as a list
            if attribute is None:
                sizes = (len(x) if isinstance(x, str) else len(str(x)) for x in items)
                ACTIVE_GUARD.get().check_width(sum(sizes) + len(str(d)) * max(0, len(items) - 1))
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
            ACTIVE_GUARD.get().check_width(n * max * 12)
        return original(n, html, min, max)

    return guarded


def _mapping_as_dict(value: Any) -> Any:
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


# What `tojson` writes with (Prefect's policy, sorted keys; plus the headers mapping as an
# object): json.dumps with these arguments would make a new encoder for every value.
_JSON_POLICY: dict[str, Any] = {"sort_keys": True, "default": _mapping_as_dict}
_JSON_ENCODER = json.JSONEncoder(**_JSON_POLICY)


def _quick_tojson(original: Callable[..., Markup]) -> Callable[..., Markup]:
    """Jinja's `tojson` (its HTML-safe escapes included), with the encoder made once."""

    @pass_eval_context
    def tojson(eval_ctx: Any, value: Any, indent: int | None = None) -> Markup:
        if indent is not None:
            return original(eval_ctx, value, indent)
        return Markup(
            _JSON_ENCODER.encode(value)
            .replace("<", "\\u003c")
            .replace(">", "\\u003e")
            .replace("&", "\\u0026")
            .replace("'", "\\u0027")
        )

    return tojson


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
        self.policies["json.dumps_kwargs"] = _JSON_POLICY
        self.filters["tojson"] = _quick_tojson(self.filters["tojson"])

    def getattr(self, obj: Any, attribute: str) -> Any:
        guard = ACTIVE_GUARD.get()
        if type(obj) is dict and type(attribute) is str and attribute not in _DICT_ATTRIBUTES:
            # `body.model` on a parsed body: the sandbox finds no such attribute on a dict and
            # looks the key up instead. The same lookup and the same budget checks, without
            # raising and catching an AttributeError first, which costs more than the rest of
            # a small render.
            if guard.clock() > guard.deadline:
                guard.tick()
            value = obj.get(attribute, missing)
            if value is missing:
                return self.undefined(obj=obj, name=attribute)
            if type(value) is str and len(value) <= guard.max_output:
                return value
            return guard.check_size(value)
        guard.tick()
        return guard.check_size(super().getattr(obj, attribute))

    def getitem(self, obj: Any, argument: Any) -> Any:
        guard = ACTIVE_GUARD.get()
        guard.tick()
        return guard.check_size(super().getitem(obj, argument))

    def call(
        __self,  # Jinja's own positional-only style, so no keyword argument can clash
        __context: Any,
        __obj: Any,
        *args: Any,
        **kwargs: Any,
    ) -> Any:
        guard = ACTIVE_GUARD.get()
        guard.tick()
        _check_str_method(guard, __obj, (*args, *kwargs.values()))
        return guard.check_size(super().call(__context, __obj, *args, **kwargs))

    def call_binop(self, context: Any, operator_: str, left: Any, right: Any) -> Any:
        guard = ACTIVE_GUARD.get()
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
