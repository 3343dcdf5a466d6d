"""Fuzzing a template: which request would break it, found by hypothesis before a sender does.

Requests start from examples (captured requests, case files, request files) and vary what
senders vary: a field missing, null, empty or very long; a number where a string was and the
reverse; unicode and control characters; lists empty or long; a value nested one level deeper;
a header missing or in another case. Each runs through the receiver's path (as a case does); a
request that fails is shrunk to the simplest that fails the same way, and reported once per
cause, template line and field (`hooklab.history.explain`), with the fix.
"""

from __future__ import annotations

import copy
import json
import textwrap
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hypothesis import HealthCheck, Phase, Verbosity, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st

from hooklab.core.outcome import Outcome
from hooklab.core.request import HookRequest, read_json
from hooklab.core.webhooks import Webhook
from hooklab.history.casefiles import (
    CaseError,
    CaseFolder,
    read_case,
    request_from_spec,
    spec_from_request,
)
from hooklab.history.cases import CaseRunner
from hooklab.history.explain import ABSENT, Cause, Explanation, checked_fix, explain, other_lines
from hooklab.history.fixes import all_quoted_text_fixed, renders_valid_events, with_line
from hooklab.history.lint import quote_line, referenced_fields
from hooklab.history.shown import shorten, shortened
from hooklab.store.contract import StoredRequest

if TYPE_CHECKING:
    import pandas as pd

DEFAULT_MAX_EXAMPLES = 200
MAX_ROUNDS = 8  # distinct errors looked for, one shrunk request each
LONG_TEXT = "x" * 5000
LONG_LIST = 100
# The characters a sender's text may hold that a template may not expect; the first is the
# plainest, so a shrunk request shows the character that matters.
TRICKY = ["a", '"', "\\", "\n", "\t", "\x00", "\x1f", "\u2028", "é", "ü", "😀", "{", "}", "<", "'"]
MUTATIONS = ("missing", "null", "empty", "long", "retype", "text", "list", "nested")
HEADER_MUTATIONS = ("missing", "recase")

Example = HookRequest | StoredRequest | dict[str, Any] | str | Path


MAX_VALUES_SHOWN = 3  # values that break a template line, shown with its finding


@dataclass
class FuzzReport:
    """What fuzzing found: `.failures`, one row per cause, template line and field, each with
    the simplest request that fails so, a sentence for the author and the fix."""

    template: str
    found: list[dict[str, Any]] = field(default_factory=list)
    tried: int = 0

    @property
    def failures(self) -> pd.DataFrame:
        """Columns: message (the cause, in a sentence), fix (a corrected template line), line,
        template_line, cause, field, breaks_on (values that break it), error (the receiver's
        text), reason, request (a request file, as a dict)."""
        import pandas as pd

        frame = pd.DataFrame(self.found, columns=list(FAILURE_COLUMNS))
        frame["line"] = frame["line"].astype("Int64")  # a line number, or <NA>
        return frame

    @property
    def passed(self) -> bool:
        return not self.found

    def summary(self) -> str:
        if not self.found:
            return f"No failing request found in {self.tried} tried."
        causes = len({row["cause"] for row in self.found})
        lines = len({row["line"] for row in self.found})
        return (
            f"{_count(causes, 'cause')} of failure, on {_count(lines, 'template line')} "
            f"({_count(len(self.found), 'finding')}), in {self.tried} requests tried."
        )

    def __str__(self) -> str:
        lines = [self.summary()]
        for number, (cause, rows) in enumerate(self.by_cause(), start=1):
            lines += ["", f"{number}. {cause.heading}"]
            lines += textwrap.wrap(cause.sentence, 96, initial_indent=_IN, subsequent_indent=_IN)
            for row in rows:
                lines.append(f"   {row['template_line'] or 'no template line'}")
                if cause.specific:
                    lines.append(f"     {row['message']}")
                    lines += [f"   {text}" for text in row["pointer"]]
                if row["field"]:
                    lines.append(f"     breaks on: {row['field']} = {', '.join(row['breaks_on'])}")
                if row["fix"]:
                    lines.append(f"     fix: {row['fix']}")
                shown = json.dumps(shortened(row["request"]), ensure_ascii=False)
                lines.append(f"     request: {shown}")
            lines += _whole_fix(rows)
        return "\n".join(lines)

    def by_cause(self) -> list[tuple[Cause, list[dict[str, Any]]]]:
        """The findings grouped by cause, in the order first found."""
        groups: dict[Cause, list[dict[str, Any]]] = {}
        for row in self.found:
            groups.setdefault(Cause(row["cause"]), []).append(row)
        return list(groups.items())

    def __repr__(self) -> str:
        return f"<FuzzReport: {self.summary()}>"


FAILURE_COLUMNS = (
    "message", "fix", "line", "template_line", "cause", "field", "breaks_on", "error",
    "reason", "request", "lines", "fixed_template", "pointer",
)  # fmt: skip


_IN = " " * 3


def _whole_fix(rows: list[dict[str, Any]]) -> list[str]:
    """Where a cause is on more lines than one: those lines, and the template fixed on all."""
    for row in rows:
        if len(row["lines"]) > 1 and row["fixed_template"]:
            listed = ", ".join(map(str, row["lines"]))
            fixed = textwrap.indent(row["fixed_template"], "     ")
            return [f"   on template lines {listed}; the template fixed on all of them:", fixed]
    return []


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


def example_spec(example: Example) -> dict[str, Any]:
    """An example as a request file: a request, a stored one, a request file's dict, or the
    path of a case file or request file."""
    if isinstance(example, StoredRequest):
        example = example.request
    if isinstance(example, HookRequest):
        return spec_from_request(example)
    if isinstance(example, dict):
        request_from_spec(example, "an example")
        return copy.deepcopy(example)
    path = Path(example)
    try:
        data = read_json(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CaseError(f"{path}: not a JSON request or case file: {exc}") from None
    if isinstance(data, dict) and "request" in data:
        return read_case(path).spec
    request_from_spec(data, str(path))
    return dict(data)


def default_example(template: str) -> dict[str, Any]:
    """A JSON request holding each `body.x` the template reads, as text, for a template fuzzed
    without examples."""
    body: dict[str, Any] = {}
    for root, keys in referenced_fields(template):
        if root != "body" or not keys:
            continue
        place = body
        for key in keys[:-1]:
            nested = place.setdefault(str(key), {})
            if not isinstance(nested, dict):
                break
            place = nested
        else:
            place.setdefault(str(keys[-1]), "example")
    return {"method": "POST", "json": body}


def fuzz(
    template_or_webhook: str | Webhook,
    examples: Iterable[Example] = (),
    *,
    max_examples: int = DEFAULT_MAX_EXAMPLES,
    seed: int = 0,
) -> FuzzReport:
    """Look for requests that break a template, starting from `examples`; the same seed and
    limits find the same requests.

    >>> report = fuzz('{"event": "e", "resource": {"prefect.resource.id": "x"}}', max_examples=20)
    >>> report.passed
    True
    """
    template = (
        template_or_webhook.template
        if isinstance(template_or_webhook, Webhook)
        else template_or_webhook
    )
    specs = [example_spec(example) for example in examples] or [default_example(template)]
    good = [request_from_spec(spec, "an example") for spec in specs]
    folder = CaseFolder(Path("fuzz"), template)
    runner = CaseRunner(folder)
    report = FuzzReport(template)
    known: dict[Any, dict[str, Any]] = {}
    try:
        for _ in range(MAX_ROUNDS):
            found = _one_round(runner, specs, known, report, max_examples, seed)
            if found is None:
                break
            spec, outcome, explanation = found
            row = _finding(template, spec, outcome, explanation, good)
            known[explanation.key] = row
            report.found.append(row)
    finally:
        runner.close()
    return report


def _finding(
    template: str,
    spec: dict[str, Any],
    outcome: Outcome,
    explanation: Explanation,
    examples: list[HookRequest],
) -> dict[str, Any]:
    """A finding's row; its fix is kept only when the template with it renders valid events
    for the request that broke it and for the examples."""
    tried = [request_from_spec(spec, "a fuzzed request"), *examples]
    fix = checked_fix(template, explanation, tried)
    others = other_lines(template, explanation)
    fixed = with_line(template, explanation.line, fix) if fix and explanation.line else None
    if others:
        whole = all_quoted_text_fixed(template)
        fixed = whole if whole and renders_valid_events(whole, tried) else None
    return {
        "message": explanation.message,
        "fix": fix,
        "line": explanation.line,
        "template_line": quote_line(template, explanation.line).strip(),
        "cause": explanation.cause.value,
        "field": explanation.field,
        "breaks_on": [_shown_value(explanation)],
        "error": outcome.error,
        "reason": outcome.reason.value if outcome.reason else None,
        "request": spec,
        "lines": sorted({explanation.line, *others} - {None}),
        "fixed_template": fixed,
        "pointer": list(explanation.pointer),
    }


def _shown_value(explanation: Explanation) -> str:
    return "(missing)" if explanation.value is ABSENT else shorten(explanation.value)


class _Found(Exception):
    def __init__(self, spec: dict[str, Any], outcome: Outcome, explanation: Explanation) -> None:
        super().__init__(outcome.error)
        self.spec, self.outcome, self.explanation = spec, outcome, explanation


def _one_round(
    runner: CaseRunner,
    specs: list[dict[str, Any]],
    known: dict[Any, dict[str, Any]],
    report: FuzzReport,
    max_examples: int,
    seed: int,
) -> tuple[dict[str, Any], Outcome, Explanation] | None:
    """The simplest request failing for a cause not in `known`, or None within the budget.
    A request failing for a known cause adds its value to that finding's `breaks_on`."""
    template = runner.folder.template

    @hypothesis_seed(seed)
    @settings(
        max_examples=max_examples,
        database=None,
        deadline=None,
        derandomize=False,
        suppress_health_check=list(HealthCheck),
        verbosity=Verbosity.quiet,
        report_multiple_bugs=False,
        phases=[Phase.generate, Phase.shrink],
    )
    @given(requests(specs))
    def check(spec: dict[str, Any]) -> None:
        report.tried += 1
        outcome = runner.outcome(request_from_spec(spec, "a fuzzed request"))
        if not outcome.failed:
            return
        explanation = explain_failure(template, outcome)
        row = known.get(explanation.key)
        if row is None:
            raise _Found(spec, outcome, explanation)
        value = _shown_value(explanation)
        if value not in row["breaks_on"] and len(row["breaks_on"]) < MAX_VALUES_SHOWN:
            row["breaks_on"].append(value)

    try:
        check()
    except _Found as found:
        return found.spec, found.outcome, found.explanation
    return None


def explain_failure(template: str, outcome: Outcome) -> Explanation:
    """The explanation of a failed outcome (what makes two failures the same: its `key`)."""
    explanation = explain(template, outcome)
    assert explanation is not None  # the outcome failed
    return explanation


# Generating requests


def requests(examples: Sequence[dict[str, Any]]) -> st.SearchStrategy[dict[str, Any]]:
    """Request files: an example as it is, or with up to three of the changes senders make."""
    return st.sampled_from(list(examples)).flatmap(
        lambda example: st.integers(0, 3).flatmap(lambda count: _mutated(example, count))
    )


def _mutated(example: dict[str, Any], count: int) -> st.SearchStrategy[dict[str, Any]]:
    @st.composite
    def build(draw: st.DrawFn) -> dict[str, Any]:
        spec = copy.deepcopy(example)
        for _ in range(count):
            _mutate(draw, spec)
        return spec

    return build()


def _mutate(draw: st.DrawFn, spec: dict[str, Any]) -> None:
    kind = "json" if "json" in spec else "form" if "form" in spec else None
    paths = _paths(spec[kind]) if kind else []
    headers = sorted(spec.get("headers") or {})
    targets = [("body", path) for path in paths] + [("header", name) for name in headers]
    if not targets:
        return
    where, target = draw(st.sampled_from(targets))
    if where == "header":
        _mutate_header(draw, spec, target)
        return
    assert kind is not None
    value = _get(spec[kind], target)
    mutation = draw(st.sampled_from(MUTATIONS))
    if mutation == "missing":
        _delete(spec[kind], target)
        return
    if kind == "form" and mutation in ("list", "nested"):
        mutation = "text"  # a form holds text only
    new = _changed(draw, mutation, value)
    if kind == "form":
        new = "" if new is None else new if isinstance(new, str) else json.dumps(new)
    _set(spec[kind], target, new)


def _changed(draw: st.DrawFn, mutation: str, value: Any) -> Any:
    if mutation == "null":
        return None
    if mutation == "empty":
        return [] if isinstance(value, list) else {} if isinstance(value, dict) else ""
    if mutation == "long":
        return LONG_TEXT
    if mutation == "retype":
        if isinstance(value, bool):
            return str(value).lower()
        if isinstance(value, (int, float)):
            return str(value)
        if isinstance(value, str):
            try:
                return json.loads(value) if value.strip() else 0
            except ValueError:
                return draw(st.integers(-(10**6), 10**6))
        return str(value)
    if mutation == "text":
        return draw(st.text(st.sampled_from(TRICKY), min_size=1, max_size=8))
    if mutation == "list":
        return draw(st.sampled_from([[], [value] * LONG_LIST]))
    return draw(st.sampled_from([{"value": value}, [value]]))  # nested


def _mutate_header(draw: st.DrawFn, spec: dict[str, Any], name: str) -> None:
    headers = dict(spec["headers"])
    value = headers.pop(name)
    if draw(st.sampled_from(HEADER_MUTATIONS)) == "recase":
        headers[draw(st.sampled_from([name.lower(), name.upper()]))] = value
    spec["headers"] = headers


Path_ = tuple[Any, ...]


def _paths(value: Any, prefix: Path_ = ()) -> list[Path_]:
    """Every place in a JSON value below its root, parents before children."""
    found: list[Path_] = []
    items: Iterable[tuple[Any, Any]] = ()
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, list):
        items = enumerate(value)
    for key, item in items:
        found.append((*prefix, key))
        found.extend(_paths(item, (*prefix, key)))
    return found


def _get(value: Any, path: Path_) -> Any:
    for key in path:
        value = value[key]
    return value


def _set(value: Any, path: Path_, new: Any) -> None:
    _get(value, path[:-1])[path[-1]] = new


def _delete(value: Any, path: Path_) -> None:
    del _get(value, path[:-1])[path[-1]]
