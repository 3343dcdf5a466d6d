"""The simplest templates, rendered without Jinja's per-render machinery, to the same text.

Most webhook templates only place request fields into JSON text (`{{ body.model }}`,
`{{ headers['X-GitHub-Event'] }}`). For those, setting up a Jinja context costs more than the
lookups themselves. A `Plan` made from the parsed template runs the very calls Jinja's compiled
code would run, in the same order, through the same sandboxed environment: attribute rules,
undefined values and render budgets do not change.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from jinja2 import nodes
from jinja2.environment import Environment
from jinja2.utils import missing

# A lookup: the variable's name, then each step as (is an attribute, key).
Lookup = tuple[str, tuple[tuple[bool, Any], ...]]
Part = str | Lookup
# The names `getattr` finds on a dict; any other `body.name` is an item lookup in the sandbox.
_DICT_ATTRIBUTES = frozenset(dir(dict))


class Guard(Protocol):
    """The render budgets in force (see `hooklab.core.templates`)."""

    max_output: int

    def tick(self) -> None: ...

    def check_size(self, value: Any) -> Any: ...


@dataclass(frozen=True)
class Plan:
    """A template that is text and lookups only, as the list of its output parts."""

    parts: tuple[Part, ...]

    def render(
        self, environment: Environment, variables: Mapping[str, Any], guard: Guard
    ) -> list[str]:
        """The chunks Jinja would yield for these variables (globals included); it stops
        early once they add up to more than the output budget, as a render would."""
        chunks = []
        size = 0
        for part in self.parts:
            if size > guard.max_output:
                break
            if isinstance(part, str):
                chunks.append(part)
                size += len(part)
                continue
            name, steps = part
            value = variables.get(name, missing)
            if value is missing:
                value = environment.undefined(name=name)
            for is_attribute, key in steps:
                if type(value) is dict and (
                    key in value if not is_attribute else key not in _DICT_ATTRIBUTES
                ):
                    # What the sandbox does for a plain dict, without raising and catching an
                    # AttributeError first: the item, or undefined; with the same budget checks.
                    guard.tick()
                    found = value.get(key, missing)
                    if found is missing:
                        found = environment.undefined(obj=value, name=key)
                    value = guard.check_size(found)
                elif is_attribute:
                    value = environment.getattr(value, key)
                else:
                    value = environment.getitem(value, key)
            text = str(value)
            chunks.append(text)
            size += len(text)
        return chunks


def plan_for(tree: nodes.Template) -> Plan | None:
    """A plan for a parsed template made only of text and `{{ name.attr['key'] }}` lookups
    (no filters, tests, calls, operators or statements); None for any other template."""
    parts: list[Part] = []
    for node in tree.body:
        if not isinstance(node, nodes.Output):
            return None
        for child in node.nodes:
            if isinstance(child, nodes.TemplateData):
                parts.append(child.data)
                continue
            lookup = _lookup(child)
            if lookup is None:
                return None
            parts.append(lookup)
    return Plan(tuple(parts))


def _lookup(node: nodes.Node) -> Lookup | None:
    steps: list[tuple[bool, Any]] = []
    while isinstance(node, (nodes.Getattr, nodes.Getitem)):
        if isinstance(node, nodes.Getattr):
            steps.append((True, node.attr))
        elif isinstance(node.arg, nodes.Const) and type(node.arg.value) in (str, int):
            steps.append((False, node.arg.value))
        else:
            return None
        node = node.node
    if not isinstance(node, nodes.Name) or node.ctx != "load":
        return None
    return node.name, tuple(reversed(steps))
