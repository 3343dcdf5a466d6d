"""A render's budgets: how much output and time it may take, what a value weighs, and what an
operation would build, measured before it runs.

Every value a template holds weighs at most the output budget, its *weight* being an upper
bound on the length of its text (`str`, `repr` or JSON, give or take a small factor): strings by
their length, containers by what they hold, however many times they hold the same thing. A value
the template makes is weighed when it is made (a literal, a join, the result of a filter, a
method or an operator), and an operation whose result could weigh far more than its inputs (a
padding width, a repeat count, a number of slices, a format's field widths, an indent for each
line) is measured from its arguments before it runs. Everything else a template can reach builds
no more than a small multiple of what it is given. So no expression allocates far past the
budget, and a loop that writes nothing still ticks the clock.
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextvars import ContextVar
from typing import Any

from jinja2.utils import Namespace

MAX_OUTPUT_BYTES = 1_500_000
MAX_RENDER_SECONDS = 1.0
MAX_INT_BITS = 100_000
# How many items a walk or an iteration takes between two looks at the clock.
_TICK_EVERY = 1024


class TemplateError(ValueError):
    """A template that cannot be saved or rendered; `lineno` points at the template line."""

    def __init__(self, message: str, lineno: int | None = None) -> None:
        self.message = message
        self.lineno = lineno
        where = f"line {lineno}: " if lineno else ""
        super().__init__(f"{where}{message}")


class RenderBudgetExceeded(TemplateError):
    """A render ran past its output-size or time budget."""


_VIEWS = frozenset({type({}.keys()), type({}.values()), type({}.items())})
_SEQUENCE_TYPES: tuple[type, ...] = (list, tuple, set, frozenset, *_VIEWS)
_SEQUENCES = frozenset(_SEQUENCE_TYPES)
_SCALARS = frozenset({int, float, bool, type(None)})
_SCALAR_WEIGHT = 24  # a float, or an object that shows only its type: at most this many


class RenderGuard:
    """The budgets of the render in progress, checked from the sandbox's hooks, so that a
    template that loops without writing anything runs out of time as well."""

    __slots__ = (
        "_remember",
        "_weights",
        "changed_locale",
        "clock",
        "deadline",
        "max_output",
        "max_seconds",
    )

    def __init__(
        self,
        clock: Callable[[], float],
        max_seconds: float,
        max_output: int,
        *,
        remember: bool = True,
    ) -> None:
        self.clock = clock
        self.max_seconds = max_seconds
        self.max_output = max_output
        self.deadline = clock() + max_seconds
        # The weight of each container weighed in this render, by id (the container is kept,
        # so that its id is not reused); the sandbox lets no template change a container.
        # `remember=False`: outside a render, where nothing would ever forget them.
        self._weights: dict[int, tuple[Any, int]] | None = None if remember else {}
        self._remember = remember
        # The template switched humanize's language, which is kept per thread: it is switched
        # back when the render ends, so that one template cannot change another's numbers.
        self.changed_locale = False

    def tick(self) -> None:
        if self.clock() > self.deadline:
            raise RenderBudgetExceeded(
                f"Rendering took longer than the limit of {self.max_seconds:g} s"
            )

    def check_size(self, value: Any) -> Any:
        """A value reached by attribute or item: its own length, quickly (what it holds was
        weighed with it)."""
        if isinstance(value, int) and value.bit_length() > MAX_INT_BITS:
            raise RenderBudgetExceeded("A number in the template grew too big")
        if isinstance(value, (str, bytes, list, tuple, dict)) and len(value) > self.max_output:
            raise RenderBudgetExceeded(
                f"A value in the template grew larger than the limit of {self.max_output} bytes"
            )
        return value

    def check_value(self, value: Any) -> Any:
        """A value the template made: refused when it weighs more than the output budget."""
        if isinstance(value, str):
            if len(value) > self.max_output:
                self._too_big(len(value))
            return value
        kind = type(value)
        if kind is int:
            if value.bit_length() > MAX_INT_BITS:
                raise RenderBudgetExceeded("A number in the template grew too big")
            return value
        if kind in _SCALARS or kind in _VIEWS:
            return value  # a view of a dict holds what the dict holds, weighed with it
        found = self.weigh(value)
        if found > self.max_output:
            self._too_big(found)
        return value

    def _too_big(self, size: int) -> None:
        raise RenderBudgetExceeded(
            f"A value in the template grew larger than the limit of {self.max_output} bytes"
        )

    def check_width(self, width: Any, what: str = "") -> None:
        # Padding and repetition allocate `width` characters before anything is written.
        if isinstance(width, int) and width > self.max_output:
            raise RenderBudgetExceeded(
                f"{what or 'A width or length'} of {width} is larger than the output limit of "
                f"{self.max_output} bytes"
            )

    def check_estimate(self, size: int, what: str) -> None:
        """Refuse an operation that would build `size` characters or more."""
        if size > self.max_output:
            raise RenderBudgetExceeded(
                f"{what} would make about {size} characters, more than the output limit of "
                f"{self.max_output} bytes"
            )

    def weigh(self, value: Any) -> int:
        """An upper bound on the length of `value` as text (its `str`, `repr` or JSON, within a
        small factor), counted up to just past the output budget."""
        kind = type(value)
        if kind is str or kind is bytes:
            return len(value) + 2
        weights = self._weights
        if weights is None:
            weights = self._weights = {}
        known = weights.get(id(value))
        if known is not None:
            return known[1]
        found = self._walk(value, weights)
        if self._remember and not isinstance(value, Namespace):  # a template may change these
            weights[id(value)] = (value, found)
        return found

    def _walk(self, value: Any, weights: dict[int, tuple[Any, int]]) -> int:
        limit = self.max_output
        total = 0
        steps = 0
        pending = [value]
        while pending:
            if total > limit:
                return total
            item = pending.pop()
            kind = type(item)
            steps += 1
            if steps % _TICK_EVERY == 0:
                self.tick()
            if kind is str:
                total += len(item) + 2
                continue
            if kind in _SCALARS:
                if kind is int:
                    total += item.bit_length() // 3 + 2
                else:
                    total += _SCALAR_WEIGHT if kind is float else 5  # None, True, False
                continue
            if item is not value:
                known = weights.get(id(item))
                if known is not None:
                    total += known[1]
                    continue
            if kind is dict or (kind not in _SEQUENCES and isinstance(item, Mapping)):
                total += 2 + 4 * len(item)
                pending.extend(item.keys())
                pending.extend(item.values())
            elif kind in _SEQUENCES or isinstance(item, _SEQUENCE_TYPES):
                total += 2 + 2 * len(item)
                pending.extend(item)
            elif isinstance(item, (str, bytes)):
                total += len(item) + 2
            elif isinstance(item, Namespace):
                pending.append(object.__getattribute__(item, "_Namespace__attrs"))
            else:
                total += _SCALAR_WEIGHT  # an object whose text does not show what it holds
        return total

    def iterate(self, items: Iterable[Any]) -> Iterator[Any]:
        """`items`, one by one, looking at the clock as it goes (a `for` loop of the template)."""
        for steps, item in enumerate(items, start=1):
            if steps % 64 == 0:
                self.tick()
            yield item

    def generated(self, items: Iterator[Any]) -> Iterator[Any]:
        """What a generator a filter returned yields, weighed together as it comes."""
        limit = self.max_output
        total = 0
        for steps, item in enumerate(items, start=1):
            if steps % 64 == 0:
                self.tick()
            total += self.weigh(item) if type(item) is not str else len(item) + 2
            if total > limit:
                self._too_big(total)
            yield item

    def joined(self, parts: Iterable[Any], what: str = "Joining these values") -> list[Any]:
        """The parts of a join (a `~`, a macro's or a block's output), weighed before joining."""
        items = parts if isinstance(parts, (list, tuple)) else list(parts)
        size = 0
        for item in items:
            size += len(item) if type(item) is str else self.weigh(item)
        self.check_estimate(size, what)
        return items  # type: ignore[return-value]


_UNGUARDED = RenderGuard(lambda: 0.0, float("inf"), MAX_OUTPUT_BYTES, remember=False)
ACTIVE_GUARD: ContextVar[RenderGuard] = ContextVar("hooklab_render_guard", default=_UNGUARDED)


# What an operation would build, from its arguments. Each takes the active guard first.

_PERCENT_FIELD = re.compile(
    r"%(?:\([^)]*\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?[hlL]?([diouxXeEfFgGcrsab%])"
)
_SPEC_NUMBER = re.compile(r"\d+")


def check_percent_format(guard: RenderGuard, fmt: str, args: Any) -> None:
    """`fmt % args` (and the `format` filter): its field widths and precisions, and each
    field's value, added up."""
    values = list(args) if isinstance(args, tuple) else [args]
    ints = [v for v in values if type(v) is int]
    fields = 0
    size = len(fmt)
    for width, precision, conversion in _PERCENT_FIELD.findall(fmt):
        if conversion == "%":
            continue
        fields += 1
        for number in (width, precision):
            if number == "*":
                size += max(ints, default=0)
            elif number:
                size += int(number)
    size += _values_weight(guard, values, fields)
    guard.check_estimate(size, "This format")


def check_str_format(guard: RenderGuard, fmt: str, args: Iterable[Any]) -> None:
    """`fmt.format(...)` and `format_map`: widths and precisions in its fields (nested `{}`
    widths taken from the arguments), and each field's value, added up."""
    values = list(args)
    ints = [v for v in values if type(v) is int]
    fields = 0
    size = len(fmt)
    try:
        parsed = list(string.Formatter().parse(fmt))
    except ValueError:
        return  # str.format raises the same error itself
    for _, field, spec, _ in parsed:
        if field is None:
            continue
        fields += 1
        if spec:
            size += sum(int(n) for n in _SPEC_NUMBER.findall(spec))
            if "{" in spec:
                size += spec.count("{") * max(ints, default=0)
    size += _values_weight(guard, values, fields)
    guard.check_estimate(size, "This format")


def _values_weight(guard: RenderGuard, values: list[Any], fields: int) -> int:
    weights = [guard.weigh(v) for v in values]
    if fields <= len(weights):
        return sum(weights)
    return fields * max(weights, default=0)  # a value may be written by several fields


def check_replace(guard: RenderGuard, text: Any, old: Any, new: Any) -> None:
    if isinstance(text, (str, bytes)) and type(old) is type(new) and isinstance(new, (str, bytes)):
        if len(new) <= len(old):
            return  # replacing by no longer text cannot grow it
        count = text.count(old) if old else len(text) + 1
        guard.check_width(len(text) + count * (len(new) - len(old)))


def check_join(guard: RenderGuard, separator: Any, items: list[Any]) -> None:
    size = guard.weigh(items) + len(str(separator)) * max(0, len(items) - 1)
    guard.check_estimate(size, "This join")


def check_expandtabs(guard: RenderGuard, text: Any, tabsize: Any = 8) -> None:
    if isinstance(tabsize, int):
        if isinstance(text, str):
            tabs = text.count("\t")
        elif isinstance(text, bytes):
            tabs = text.count(b"\t")
        else:
            return
        guard.check_estimate(len(text) + tabs * tabsize, "Expanding these tabs")


def check_translate(guard: RenderGuard, text: Any, table: Any) -> None:
    if isinstance(text, str) and isinstance(table, Mapping):
        longest = max((len(v) for v in table.values() if isinstance(v, str)), default=1)
        guard.check_estimate(len(text) * longest, "This translation")


def check_indent(guard: RenderGuard, text: Any, width: Any = 4, *_: Any, **__: Any) -> None:
    prefix = len(width) if isinstance(width, str) else width
    if isinstance(prefix, int):
        lines = str(text).count("\n") + 2
        guard.check_estimate(len(str(text)) + lines * prefix, "This indent")


def check_wordwrap(
    guard: RenderGuard,
    text: Any,
    width: Any = 79,
    break_long_words: Any = True,
    wrapstring: Any = None,
    *_: Any,
    **__: Any,
) -> None:
    """`wordwrap`: the wrapstring written once for each line, and the time a long word takes,
    which Python's textwrap breaks one piece at a time, copying the rest each time."""
    if not isinstance(width, int):
        return
    text = str(text)
    step = max(width, 1)
    if isinstance(wrapstring, str):
        # A wrapped line holds at least one word, or `width` characters of a long one.
        lines = len(text) // step + sum(text.count(c) for c in " \t\n") + 1
        guard.check_estimate(len(text) + lines * len(wrapstring), "This wordwrap")
    if break_long_words:
        copied = sum(len(word) ** 2 // step for word in text.split() if len(word) > step)
        if copied > _WORK_PER_OUTPUT_BYTE * guard.max_output:
            raise RenderBudgetExceeded(
                f"wordwrap({width}) would break a word of {max(map(len, text.split()))} "
                "characters into pieces one at a time, far past the time budget"
            )


# How many characters an operation may copy for each byte of the output budget.
_WORK_PER_OUTPUT_BYTE = 100


def check_json_indent(guard: RenderGuard, value: Any, indent: Any) -> None:
    """`tojson(indent)`: every item on its own line, indented once for each level it is in."""
    step = len(indent) if isinstance(indent, str) else indent
    if not isinstance(step, int) or step <= 0:
        return
    size = guard.weigh(value)
    pending = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        size += depth * step + 1
        if size > guard.max_output:
            break
        if isinstance(item, (list, tuple)):
            pending.extend((child, depth + 1) for child in item)
        elif isinstance(item, Mapping):
            pending.extend((child, depth + 1) for child in item.values())
    guard.check_estimate(size, "This tojson indent")


def check_slices(guard: RenderGuard, value: Any, slices: Any, fill_with: Any = None) -> None:
    """`slice(n)` makes n lists, whatever it is given."""
    if isinstance(slices, int):
        extra = guard.weigh(fill_with) * slices if fill_with is not None else 0
        guard.check_estimate(4 * slices + extra, f"slice({slices})")


def check_batch(guard: RenderGuard, value: Any, size: Any, fill_with: Any = None) -> None:
    """`batch(n, fill)` fills its last batch up to n items."""
    if isinstance(size, int) and fill_with is not None:
        guard.check_estimate((guard.weigh(fill_with) + 2) * size, f"batch({size}, ...)")


def check_sum(guard: RenderGuard, value: Any, attribute: Any = None, start: Any = 0) -> None:
    """`sum(start=[])` joins lists one at a time, copying all it has so far each time."""
    if isinstance(start, (list, tuple)) and isinstance(value, (list, tuple)):
        items = sum(len(x) for x in value if isinstance(x, (list, tuple))) + len(start)
        guard.check_estimate(len(value) * items, "Adding up these lists")


def check_to_bytes(guard: RenderGuard, length: Any = 1, *_: Any, **__: Any) -> None:
    guard.check_width(length)


def check_numbers_as_widths(guard: RenderGuard, value: Any, *args: Any, **kwargs: Any) -> None:
    """humanize's filters take precisions, numbers of digits and format strings: each number
    among their arguments, or in a format, is a width their text may take."""
    for argument in (*args, *kwargs.values()):
        if type(argument) is int:
            guard.check_width(argument)
        elif isinstance(argument, str):
            widths = sum(int(number) for number in _SPEC_NUMBER.findall(argument))
            guard.check_estimate(widths, "This format")
