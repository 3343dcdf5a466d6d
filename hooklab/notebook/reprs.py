"""Rich HTML views of webhooks, events, replays and diffs for notebooks; all text is escaped."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from html import escape
from typing import TYPE_CHECKING, Any

from hooklab.core.events import ReceivedEvent
from hooklab.core.outcome import Outcome
from hooklab.core.webhooks import Webhook
from hooklab.store.values import is_missing

if TYPE_CHECKING:
    from hooklab.history.fuzz import FuzzReport
    from hooklab.history.lint import Finding
    from hooklab.history.replay import Diff, ReplayResult

PREVIEW_ROWS = 10
_STYLE = "font-family: var(--jp-code-font-family, monospace); font-size: 0.9em"


def pretty_json(value: Any) -> str:
    """Indented JSON for people; anything JSON cannot hold is shown as text."""
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    head = "".join(f"<th style='text-align:left'>{escape(h)}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(f"<td style='text-align:left'>{_cell(v)}</td>" for v in row) + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _cell(value: Any) -> str:
    # A frame's gap is None, NaN or pd.NA depending on pandas' string storage: all show empty.
    if is_missing(value):
        return ""
    if isinstance(value, (dict, list)):
        return f"<code>{escape(json.dumps(value, ensure_ascii=False, default=str))}</code>"
    return escape(str(value))


def webhook_html(hook: Webhook, url: str | None = None, *, check: bool = True) -> str:
    """A webhook card: name, state, its compatibility check (unless `check` is false), URL
    and template."""
    from hooklab.history.lint import check_template

    state = "enabled" if hook.enabled else "<b>disabled</b>"
    rows = [("id", hook.id), ("slug", hook.slug)]
    if url:
        rows.insert(0, ("url", url))
    if hook.description:
        rows.append(("description", hook.description))
    if hook.service_account_id:
        rows.append(("service account", hook.service_account_id))
    checks = findings_html(check_template(hook.template)) if check else ""
    return (
        f"<div style='{_STYLE}'><b>Webhook {escape(hook.name)}</b> ({state})"
        f"{checks}{table(('field', 'value'), rows)}"
        f"<details><summary>template</summary><pre>{escape(hook.template)}</pre></details></div>"
    )


# Each level of the check as a box that looks like one: red, amber, and a quiet blue.
_LEVEL_STYLES = {
    "error": "border-left: 4px solid #c62828; background: #fdecea; color: #5f0f0f",
    "warning": "border-left: 4px solid #ef8f00; background: #fff4e0; color: #4d2c00",
    "note": "border-left: 4px solid #5b8cc4; background: #eef4fb; color: #1b3553",
}
_BOX = "padding: 4px 8px; margin: 4px 0; white-space: pre-wrap"


def findings_html(findings: Sequence[Finding]) -> str:
    """The compatibility check: each error, warning and note in a box of its colour, with its
    level spelled out (colour is not the only sign); or one line saying it is clean."""
    from hooklab.history.lint import clean_summary

    boxes = []
    if not any(f.is_problem for f in findings):
        clean = escape(clean_summary(findings))
        boxes.append(f"<div style='color: #2e7d32; margin: 4px 0'>&#10003; {clean}</div>")
    for finding in sorted(findings, key=lambda f: not f.is_problem):
        style = _LEVEL_STYLES.get(finding.level, _LEVEL_STYLES["note"])
        boxes.append(f"<div style='{style}; {_BOX}'>{escape(str(finding))}</div>")
    return "".join(boxes)


def fuzz_html(report: FuzzReport) -> str:
    """What fuzzing found: for each cause its heading and sentence, then for each template line
    the values that break it, the fix and the simplest failing request."""
    from hooklab.history.shown import shortened

    parts = [f"<div style='{_STYLE}'><b>{escape(report.summary())}</b>"]
    for cause, rows in report.by_cause():
        parts.append(f"<p><b>{escape(cause.heading)}</b><br>{escape(cause.sentence)}</p>")
        shown = [
            [
                row["template_line"],
                f"{row['field']} = {', '.join(row['breaks_on'])}" if row["field"] else "",
                row["fix"] or (row["message"] if cause.specific else ""),
                json.dumps(shortened(row["request"]), ensure_ascii=False),
            ]
            for row in rows
        ]
        parts.append(table(("template line", "breaks on", "fix", "simplest request"), shown))
    return "".join(parts) + "</div>"


def event_html(event: ReceivedEvent) -> str:
    """One event: name, resource, and the whole event as JSON, folded."""
    data = event.model_dump(mode="json")
    return (
        f"<div style='{_STYLE}'><b>{escape(event.event)}</b> "
        f"on <code>{escape(event.resource.id)}</code> at {escape(data['occurred'])}"
        f"<details><summary>event JSON</summary><pre>{escape(pretty_json(data))}</pre>"
        "</details></div>"
    )


def outcome_html(outcome: Outcome) -> str:
    """What one request produced: its status, the error if any, and its events."""
    head = f"<b>{outcome.status}</b>"
    if outcome.error:
        head += f" <span style='color:#b00'>{escape(outcome.error)}</span>"
    events = "".join(event_html(event) for event in outcome.events)
    return f"<div style='{_STYLE}'>{head}{events}</div>"


def replay_html(result: ReplayResult) -> str:
    """A replay's summary, its failures with their reasons, and the first events."""
    parts = [f"<div style='{_STYLE}'><b>{escape(result.summary())}</b>"]
    failures = result.failures
    if len(failures):
        rows = failures[["request_id", "error"]].head(PREVIEW_ROWS).itertuples(index=False)
        parts.append("<p>Failures</p>" + table(("request", "error"), rows))
    events = result.events
    if len(events):
        shown = [c for c in ("request_id", "event", "resource.id", "resource.name") if c in events]
        rows = events[shown].head(PREVIEW_ROWS).itertuples(index=False)
        parts.append("<p>Events</p>" + table(shown, rows))
        if len(events) > PREVIEW_ROWS:
            parts.append(
                f"<p>... and {len(events) - PREVIEW_ROWS} more in <code>.events</code></p>"
            )
    parts.append("</div>")
    return "".join(parts)


def diff_html(diff: Diff) -> str:
    """A diff's summary and its changes, field by field."""
    frame = diff.frame
    parts = [f"<div style='{_STYLE}'><b>{escape(diff.summary())}</b>"]
    if len(frame):
        colour = {"added": "#070", "dropped": "#b00", "changed": "#a60"}
        rows = []
        row: Any  # a diff row's fields are strings and any values
        for row in frame.head(PREVIEW_ROWS * 5).itertuples(index=False):
            change = f"<span style='color:{colour[row.change]}'>{escape(row.change)}</span>"
            cells = [
                _cell(row.request_id),
                change,
                _cell(row.field),
                _cell(row.old),
                _cell(row.new),
            ]
            rows.append("<tr>" + "".join(f"<td style='text-align:left'>{c}</td>" for c in cells))
        head = "".join(
            f"<th style='text-align:left'>{h}</th>"
            for h in ("request", "change", "field", "old", "new")
        )
        parts.append(f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>")
    parts.append("</div>")
    return "".join(parts)


def register(ipython: Any, url_of: Any = None) -> None:
    """Teach IPython's HTML formatter about webhooks, events and outcomes (no edits to them)."""
    formatter = ipython.display_formatter.formatters["text/html"]
    formatter.for_type(Webhook, lambda hook: webhook_html(hook, url_of(hook) if url_of else None))
    formatter.for_type(ReceivedEvent, event_html)
    formatter.for_type(Outcome, outcome_html)
    from hooklab.history.diffs import Diff

    formatter.for_type(Diff, diff_html)
    from hooklab.history.replay import ReplayResult

    formatter.for_type(ReplayResult, replay_html)
    # By name: fuzzing brings hypothesis, which loading the extension should not import.
    formatter.for_type_by_name("hooklab.history.fuzz", "FuzzReport", fuzz_html)
