"""A failing case as people read it: each field that differs with both values, the template
line that wrote it and what the request lacked there; a failure pointed into the template; and
the rendered text."""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import TYPE_CHECKING

from hooklab.history.explain import (
    failure_lines,
    field_key_path,
    key_line,
    placement_at,
    referenced_in,
)
from hooklab.history.lint import quote_line, value_at

if TYPE_CHECKING:
    from hooklab.history.cases import CaseResult, Rewrite
    from hooklab.history.expectations import Difference

RENDERED_LINES_SHOWN = 40
DIFF_LINES_SHOWN = 30  # of each rewritten case file


def case_report(result: CaseResult) -> str:
    """What `pytest` and `hooklab cases run` print for a failing case."""
    template = result.folder.template
    lines = [f"case {_shown(result.case.path)}: {len(result.differences)} field(s) differ"]
    for difference in result.differences:
        lines.append(f"  {difference}")
        lines += [f"    {line}" for line in field_origin(result, difference)]
    outcome = result.outcome
    if outcome.failed:
        explained = failure_lines(template, outcome)
        if any(d.field == "error" for d in result.differences):
            explained = explained[1:]  # the error is in the difference already
        else:
            explained[0] = f"error: {explained[0]}"
        lines += [f"  {line}" for line in explained]
    if outcome.rendered is not None:
        lines.append("  rendered:")
        lines += [f"    {line}" for line in outcome.rendered.splitlines()[:RENDERED_LINES_SHOWN]]
    return "\n".join(lines)


def field_origin(result: CaseResult, difference: Difference) -> list[str]:
    """Where a differing event field comes from: the template line that writes it, and for each
    request field read there, that no case has it, or that this case's request lacks it."""
    if not difference.field.startswith("events["):
        return []
    rest = difference.field.split("].", 1)[-1]
    key_path = field_key_path(rest + ": ")
    if not key_path:
        return []
    template = result.folder.template
    placement = placement_at(template, key_path)
    line = placement.expression.line if placement is not None else key_line(template, key_path)
    quoted = quote_line(template, line)
    found = [f"from template line {quoted.strip()}"] if quoted else []
    if placement is None:
        return found
    variables = _variables(result)
    for name, root, keys in referenced_in(placement.expression.source):
        if name in result.missing_everywhere:
            found.append(result.missing_everywhere[name])
        elif variables is not None and value_at(variables.get(root), keys, _NOWHERE) is _NOWHERE:
            found.append(f"{name} is missing from this case's request")
    return found


_NOWHERE = object()


def _variables(result: CaseResult) -> dict[str, object] | None:
    from hooklab.core.request import BodyError, template_variables

    try:
        return template_variables(result.case.request)
    except BodyError:
        return None


def rewrites_report(rewrites: list[Rewrite]) -> list[str]:
    """What an update says it did: each case file it rewrote, and how (a short unified diff
    of the file), so that a bug is not taken as the expectation unseen."""
    if not rewrites:
        return ["No case file rewritten: every case passes as it is"]
    noun = "case file" if len(rewrites) == 1 else "case files"
    lines = [f"Rewrote {len(rewrites)} {noun} to what the templates produce now:"]
    for rewrite in rewrites:
        shown = str(_shown(rewrite.path))
        diff = list(
            difflib.unified_diff(
                rewrite.before.splitlines(),
                rewrite.after.splitlines(),
                f"{shown} (before)",
                f"{shown} (now)",
                n=1,
                lineterm="",
            )
        )
        lines.append(f"  {shown}")
        lines += [f"    warning: {warning}" for warning in rewrite.warnings]
        lines += [f"    {line}" for line in diff[:DIFF_LINES_SHOWN]]
        if len(diff) > DIFF_LINES_SHOWN:
            lines.append(f"    ... {len(diff) - DIFF_LINES_SHOWN} more lines of diff")
    return lines


def _shown(path: Path) -> Path:
    """A path as people read it: relative to the working directory when it is below it."""
    try:
        return path.resolve().relative_to(Path.cwd())
    except ValueError:
        return path
