"""The sandboxed Jinja2 environment of Prefect's user templates, with hooklab's render budgets.

The budgets (`hooklab.core.budget`) are checked from the sandbox's own hooks (every attribute,
item, call and operator), from a wrapper around every filter, from the environment's joins, and
from two calls the template compiler adds (`hooklab.core.templates`): one weighs each list, tuple
and dict a template writes as a literal, one looks at the clock as a `for` loop goes. The render
in progress finds its budgets in a context variable.
"""

from __future__ import annotations

import functools
import json
import types
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, cast

from jinja2 import ChainableUndefined, Undefined, nodes, pass_context, pass_eval_context
from jinja2 import Template as JinjaTemplate
from jinja2.compiler import CodeGenerator, Frame
from jinja2.runtime import markup_join, str_join
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import _PassArg, missing
from jinja2.visitor import NodeTransformer
from markupsafe import Markup

from hooklab.core import budget
from hooklab.core.budget import (
    ACTIVE_GUARD,
    MAX_OUTPUT_BYTES,
    MAX_RENDER_SECONDS,
    RenderBudgetExceeded,
    RenderGuard,
    TemplateError,
)

__all__ = [
    "ACTIVE_GUARD",
    "ENVIRONMENT",
    "MAX_LOOP_COUNT",
    "MAX_NESTED_LOOP_DEPTH",
    "MAX_OUTPUT_BYTES",
    "MAX_RENDER_SECONDS",
    "MAX_TEMPLATE_RANGE",
    "RenderBudgetExceeded",
    "RenderGuard",
    "TemplateError",
    "UserTemplateEnvironment",
    "budgeted_tree",
    "end_render",
    "measure_joins",
]

MAX_TEMPLATE_RANGE = 100
MAX_LOOP_COUNT = 10
MAX_NESTED_LOOP_DEPTH = 2

# Every attribute `getattr` finds on a dict (those of dict and object); any other name is a key.
_DICT_ATTRIBUTES = frozenset(dir(dict))


def _limited_range(*args: int) -> range:
    rng = range(*args)
    if len(rng) > MAX_TEMPLATE_RANGE:
        raise OverflowError(
            "Range too big. The sandbox blocks ranges larger than "
            f"MAX_TEMPLATE_RANGE={MAX_TEMPLATE_RANGE}."
        )
    return rng


# The filters that can build far more than they are given: what each would build is measured
# from its value and arguments before it runs. Every other filter builds at most a small
# multiple of its input (the sandbox's tests check each one).
Check = Callable[..., None]
_FILTER_CHECKS: dict[str, Check] = {
    "batch": budget.check_batch,
    "center": lambda guard, value, width=80, *_, **__: guard.check_width(width),
    "format": lambda guard, value, *args, **kwargs: budget.check_percent_format(
        guard, str(value), tuple(kwargs.values()) or args
    ),
    "indent": budget.check_indent,
    "replace": lambda guard, value, old, new, *_, **__: budget.check_replace(
        guard, str(value), str(old), str(new)
    ),
    "slice": budget.check_slices,
    "sum": budget.check_sum,
    "wordwrap": budget.check_wordwrap,
}


# Filters whose result is a number, a part of what they are given, or text at most a few times
# longer than theirs that does not grow again when the filter is applied again (a change of
# case): nothing to weigh, so they run as Jinja has them.
_WITHIN_THEIR_INPUT = frozenset(
    {
        "abs", "attr", "capitalize", "count", "d", "default", "filesizeformat", "first",
        "float", "int", "last", "length", "lower", "max", "min", "random", "round", "safe",
        "title", "trim", "truncate", "upper", "wordcount",
    }
)  # fmt: skip


def _budgeted_filter(name: str, original: Callable[..., Any]) -> Callable[..., Any]:
    """A filter within the render's budgets: its arguments measured first where it can build
    far more than it is given, its result weighed, a generator's items weighed as they come.

    Jinja passes the environment or a context first to the filters that ask for it (their
    `jinja_pass_arg`, which the wrapper keeps), so the value is then the second argument.
    """
    skip = 0 if _PassArg.from_obj(original) is None else 1
    check = _checked_arguments(_FILTER_CHECKS[name]) if name in _FILTER_CHECKS else None
    if name == "join":
        check = _checked_join
    elif name.startswith("humanize_"):
        check = _checked_arguments(budget.check_numbers_as_widths)

    def budgeted(*args: Any, **kwargs: Any) -> Any:
        if check is not None:
            args = check(ACTIVE_GUARD.get(), skip, args, kwargs)
        result = original(*args, **kwargs)
        if isinstance(result, str) and len(result) <= _SHORT:
            return result  # short text: nothing to weigh
        guard = ACTIVE_GUARD.get()
        if type(result) is types.GeneratorType:
            return _same_name(guard.generated(result), result)
        return guard.check_value(result)

    return functools.update_wrapper(budgeted, original)


# Text no longer than this is within any output budget a render is given.
_SHORT = 4096


def _checked_arguments(check: Check) -> Callable[..., tuple[Any, ...]]:
    """A filter's check, called with its value and arguments (after what Jinja passes first)."""

    def checked(
        guard: RenderGuard, skip: int, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> tuple[Any, ...]:
        check(guard, *args[skip:], **kwargs)
        return args

    return checked


def _checked_join(
    guard: RenderGuard, skip: int, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[Any, ...]:
    # An iterator is read here, once, into a list, and handed on as one.
    items = list(args[skip])
    separator = args[skip + 1] if len(args) > skip + 1 else kwargs.get("d", "")
    budget.check_join(guard, separator, items)
    return (*args[:skip], items, *args[skip + 1 :])


def _same_name(wrapper: Iterator[Any], generator: Any) -> Iterator[Any]:
    # `{{ items|map('upper') }}` writes the generator's repr, which names its function.
    wrapper.__name__ = generator.__name__  # type: ignore[attr-defined]
    wrapper.__qualname__ = generator.__qualname__  # type: ignore[attr-defined]
    return wrapper


def _switching_language(original: Callable[..., Any]) -> Callable[..., Any]:
    """humanize's `activate` and `deactivate` switch the language of the thread: the render
    notes it, to switch it back when it ends. Taking the context keeps Jinja from calling them
    while it compiles a template (it calls a filter of constants then), outside any render."""

    @pass_context
    def switching(context: Any, *args: Any, **kwargs: Any) -> Any:
        ACTIVE_GUARD.get().changed_locale = True
        return original(context.eval_ctx, *args, **kwargs)

    return switching


def end_render(guard: RenderGuard) -> None:
    """Undo what a render changed outside itself: humanize's language, switched back."""
    if guard.changed_locale:
        from humanize.i18n import deactivate

        deactivate()  # hooklab itself never switches it, so between renders it is the default


def _guarded_lipsum(original: Callable[..., str]) -> Callable[..., str]:
    # Jinja's own parameter names, so that keyword calls such as lipsum(2, max=50) still work.
    def guarded(n: int = 5, html: bool = True, min: int = 20, max: int = 100) -> str:
        # Each paragraph has up to `max` words of up to a dozen characters.
        if isinstance(n, int) and isinstance(max, int):
            ACTIVE_GUARD.get().check_width(n * max * 12)
        return original(n, html, min, max)

    return guarded


def _check_join_method(guard: RenderGuard, separator: Any, args: tuple[Any, ...]) -> None:
    if args and isinstance(args[0], (list, tuple)):
        budget.check_join(guard, separator, list(args[0]))


def _check_format_method(guard: RenderGuard, fmt: Any, args: tuple[Any, ...]) -> None:
    budget.check_str_format(guard, fmt, args)


def _check_format_map(guard: RenderGuard, fmt: Any, args: tuple[Any, ...]) -> None:
    values = args[0].values() if args and isinstance(args[0], Mapping) else ()
    budget.check_str_format(guard, fmt, values)


# The methods of text and bytes that can build far more than they are given, measured first.
_TEXT_METHODS: dict[str, Callable[[RenderGuard, Any, tuple[Any, ...]], None]] = {
    "center": lambda guard, text, args: guard.check_width(args[0] if args else 0),
    "ljust": lambda guard, text, args: guard.check_width(args[0] if args else 0),
    "rjust": lambda guard, text, args: guard.check_width(args[0] if args else 0),
    "zfill": lambda guard, text, args: guard.check_width(args[0] if args else 0),
    "expandtabs": lambda guard, text, args: budget.check_expandtabs(guard, text, *args[:1]),
    "replace": lambda guard, text, args: (
        budget.check_replace(guard, text, *args[:2]) if len(args) >= 2 else None
    ),
    "translate": lambda guard, text, args: budget.check_translate(guard, text, *args[:1]),
    "join": _check_join_method,
    "format": _check_format_method,
    "format_map": _check_format_map,
}


def _check_method(guard: RenderGuard, method: Any, args: tuple[Any, ...]) -> tuple[Any, ...]:
    """Measure a call of a method that can build far more than it is given; the arguments to
    call it with (an iterator handed to `str.join` is read here, once, into a list)."""
    # The sandbox hands out `str.format` wrapped; the wrapper keeps the method as __wrapped__.
    method = getattr(method, "__wrapped__", method)
    owner = getattr(method, "__self__", None)
    name = getattr(method, "__name__", "")
    if isinstance(owner, (str, bytes)):
        check = _TEXT_METHODS.get(name)
        if check is not None:
            if name == "join" and args and not isinstance(args[0], (list, tuple)):
                args = (list(args[0]), *args[1:])
            check(guard, owner, args)
    elif type(owner) is int and name == "to_bytes":
        budget.check_to_bytes(guard, *args[:1])
    return args


def _mapping_as_dict(value: Any) -> Any:
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, Undefined):
        # Jinja's own text names the class (ChainableUndefined), not what is missing.
        raise TemplateError(missing_value_message(value))
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def missing_value_message(value: Undefined) -> str:
    """What `tojson` says of a value that is missing: its name, and the way out.

    >>> missing_value_message(ChainableUndefined(name="customer"))
    "'customer' is missing, and tojson cannot write a missing value (write |default(none) before |tojson to get null)"
    """  # noqa: E501
    name = value._undefined_name
    what = f"{name!r} is missing" if isinstance(name, str) else "a value is missing"
    return (
        f"{what}, and tojson cannot write a missing value "
        "(write |default(none) before |tojson to get null)"
    )


# What `tojson` writes with (Prefect's policy, sorted keys; plus the headers mapping as an
# object): json.dumps with these arguments would make a new encoder for every value.
_JSON_POLICY: dict[str, Any] = {"sort_keys": True, "default": _mapping_as_dict}
_JSON_ENCODER = json.JSONEncoder(**_JSON_POLICY)


def _quick_tojson(original: Callable[..., Markup]) -> Callable[..., Markup]:
    """Jinja's `tojson` (its HTML-safe escapes included), with the encoder made once."""

    @pass_eval_context
    def tojson(eval_ctx: Any, value: Any, indent: int | None = None) -> Markup:
        if indent is not None:
            budget.check_json_indent(ACTIVE_GUARD.get(), value, indent)
            return original(eval_ctx, value, indent)
        return Markup(
            _JSON_ENCODER.encode(value)
            .replace("<", "\\u003c")
            .replace(">", "\\u003e")
            .replace("&", "\\u0026")
            .replace("'", "\\u0027")
        )

    return tojson


_SANDBOX_METHODS = frozenset({"hooklab_made", "hooklab_loop"})


def _sandbox_call(method: str, node: nodes.Expr) -> nodes.Expr:
    """A call of one of the sandbox's own methods on a value. Only this module makes calls of
    an environment attribute (Jinja's parser never does), and `_CodeGenerator` compiles them
    as plain calls, not through the checks for calls a template makes."""
    function = nodes.EnvironmentAttribute(method, lineno=node.lineno)
    return nodes.Call(function, [node], [], None, None, lineno=node.lineno)


class _BudgetedTree(NodeTransformer):
    """Hands each literal list, tuple and dict to the sandbox to be weighed when it is made,
    and each `for` loop's items to the sandbox's clock."""

    def visit_List(self, node: nodes.Expr) -> nodes.Node:
        self.generic_visit(node)
        return _sandbox_call("hooklab_made", node)

    visit_Dict = visit_List

    def visit_Tuple(self, node: nodes.Tuple) -> nodes.Node:
        self.generic_visit(node)
        # Only a tuple that is a value; one that is assigned to (`for a, b in ...`) stays.
        return _sandbox_call("hooklab_made", node) if node.ctx == "load" else node

    def visit_For(self, node: nodes.For) -> nodes.Node:
        self.generic_visit(node)
        node.iter = _sandbox_call("hooklab_loop", cast(nodes.Expr, node.iter))
        return node


def budgeted_tree(tree: nodes.Template) -> nodes.Template:
    """A template's syntax tree, its literals weighed and its loops on the clock."""
    found = _BudgetedTree().visit(tree)
    assert isinstance(found, nodes.Template)
    return found


class _CodeGenerator(CodeGenerator):
    def visit_Call(self, node: nodes.Call, frame: Frame, forward_caller: bool = False) -> None:
        target = node.node
        if isinstance(target, nodes.EnvironmentAttribute) and target.name in _SANDBOX_METHODS:
            self.write(f"environment.{target.name}(")
            self.visit(node.args[0], frame)
            self.write(")")
            return
        # (Jinja's own is wrapped by its constant folding, which takes the flag by keyword.)
        super().visit_Call(node, frame, forward_caller=forward_caller)


def _measured(join: Callable[[Any], str]) -> Callable[[Any], str]:
    def measured(parts: Any) -> str:
        return join(ACTIVE_GUARD.get().joined(parts, "This ~ join"))

    return measured


_MEASURED_JOINS = {"str_join": _measured(str_join), "markup_join": _measured(markup_join)}


def measure_joins(compiled: JinjaTemplate) -> JinjaTemplate:
    """A compiled template whose `a ~ b` joins are measured before they join (the compiled
    code finds Jinja's two join functions among its module's names)."""
    compiled.root_render_func.__globals__.update(_MEASURED_JOINS)
    return compiled


class UserTemplateEnvironment(ImmutableSandboxedEnvironment):
    """Prefect's user-template sandbox, plus hooks that keep one render within its budgets:
    no expression may allocate far past the output limit, and a loop that writes nothing
    still runs out of time."""

    intercepted_binops = frozenset({"*", "**", "+", "%"})
    code_generator_class = _CodeGenerator

    def __init__(self) -> None:
        super().__init__(
            undefined=ChainableUndefined,
            extensions=["jinja2_humanize_extension.HumanizeExtension"],
        )
        self.globals["range"] = _limited_range
        lipsum = cast(Callable[..., str], self.globals["lipsum"])
        self.globals["lipsum"] = _guarded_lipsum(lipsum)
        # Imported here: the cloudevents SDK is only needed by templates that use the filter.
        from hooklab.core.cloudevents import from_cloud_event

        self.filters["from_cloud_event"] = from_cloud_event
        # `{{ headers|tojson }}`: the headers mapping is not a dict, so json.dumps needs help.
        self.policies["json.dumps_kwargs"] = _JSON_POLICY
        self.filters["tojson"] = _quick_tojson(self.filters["tojson"])
        for name in ("humanize_activate", "humanize_deactivate"):
            self.filters[name] = _switching_language(self.filters[name])
        for name, original in list(self.filters.items()):
            if name not in _WITHIN_THEIR_INPUT:
                self.filters[name] = _budgeted_filter(name, original)

    def concat(self, parts: Iterable[str]) -> str:
        """What a macro, a call block or a `{% set %}` block writes, joined within the budget."""
        return "".join(ACTIVE_GUARD.get().joined(parts, "This block's text"))

    def hooklab_made(self, value: Any) -> Any:
        """A list, tuple or dict the template wrote as a literal, weighed."""
        return ACTIVE_GUARD.get().check_value(value)

    def hooklab_loop(self, items: Any) -> Iterator[Any]:
        """What a `for` loop goes over, with a look at the clock as it goes."""
        return ACTIVE_GUARD.get().iterate(items)

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
        if type(obj) is ChainableUndefined and attribute[:1] != "_":
            # `body.pull_request.title` where the body has no pull_request: Jinja's lookup
            # finds the missing value itself, safe, after an attribute search and its checks.
            guard.tick()
            return obj
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
        if kwargs:
            _check_method(guard, __obj, (*args, *kwargs.values()))
        else:
            args = _check_method(guard, __obj, args)
        return guard.check_value(super().call(__context, __obj, *args, **kwargs))

    def call_binop(self, context: Any, operator_: str, left: Any, right: Any) -> Any:
        guard = ACTIVE_GUARD.get()
        guard.tick()
        if operator_ == "*":
            for seq, count in ((left, right), (right, left)):
                if isinstance(seq, (str, bytes)) and isinstance(count, int):
                    guard.check_width(len(seq) * count)
                elif isinstance(seq, (list, tuple)) and isinstance(count, int):
                    guard.check_estimate(guard.weigh(seq) * count, "This repetition")
        elif operator_ == "**":
            if isinstance(left, int) and isinstance(right, int) and abs(right) > 1000:
                raise OverflowError("Exponent too big for the template sandbox.")
        elif operator_ == "%" and isinstance(left, str):
            budget.check_percent_format(guard, left, right)
        return guard.check_value(super().call_binop(context, operator_, left, right))


ENVIRONMENT = UserTemplateEnvironment()
