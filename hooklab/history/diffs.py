"""Compare the events two replays made from the same requests: added, dropped, changed."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, Protocol, cast

from hooklab.store.resources import RESOURCE_ID, RESOURCE_ROLE
from hooklab.store.values import flatten_paths, is_missing

if TYPE_CHECKING:
    import pandas as pd

MAX_SHOWN = 50  # differences `str(diff)` lists; `.frame` has them all
IGNORED_FIELDS = ("id", "occurred", "received", "webhook_id", "webhook_name", "request_id")


class HasEvents(Protocol):
    """What diff reads of a replay (a `ReplayResult`): its events frame."""

    @property
    def frame(self) -> pd.DataFrame: ...


class Diff:
    """Per request, the events added, dropped and changed between two replays, field by field.

    `.frame` has one row per difference: `request_id`, `change` ("added", "dropped" or
    "changed"), `field` (None for a whole event), `old`, `new`. In a notebook it shows as HTML
    (the view `hooklab.notebook.reprs.register` teaches IPython).
    """

    def __init__(self, frame: pd.DataFrame, compared: int, unchanged: int) -> None:
        self.frame = frame
        self.compared = compared
        self.unchanged = unchanged

    def summary(self) -> str:
        counts = self.frame["change"].value_counts()
        changed = self.frame.loc[self.frame["change"] == "changed", "request_id"].nunique()
        return (
            f"{self.compared} requests compared: {self.unchanged} unchanged; "
            f"{int(counts.get('added', 0))} events added, {int(counts.get('dropped', 0))} dropped, "
            f"{int(counts.get('changed', 0))} fields changed in {changed} requests"
        )

    def __len__(self) -> int:
        return len(self.frame)

    def __repr__(self) -> str:
        return f"<Diff: {self.summary()}>"

    def __str__(self) -> str:
        """The summary, then each difference under its request (the first `MAX_SHOWN`)."""
        lines = [self.summary()]
        shown = self.frame.head(MAX_SHOWN)
        for request_id, changes in shown.groupby("request_id", sort=False):
            lines.append(f"request {request_id}:")
            for change in changes.itertuples(index=False):
                if change.change == "changed":
                    lines.append(f"  {change.field}: {change.old!r} -> {change.new!r}")
                elif change.change == "added":
                    lines.append(f"  added event {change.new!r}")
                else:
                    lines.append(f"  dropped event {change.old!r}")
        if len(self.frame) > MAX_SHOWN:
            lines.append(f"... and {len(self.frame) - MAX_SHOWN} more differences in .frame")
        return "\n".join(lines)


def diff(
    old: HasEvents | pd.DataFrame,
    new: HasEvents | pd.DataFrame,
    *,
    ignore: Sequence[str] = IGNORED_FIELDS,
) -> Diff:
    """Compare the events two replays (or two events frames) made from the same requests.

    Events are matched by request id and position. Ids and times differ on every run and are
    ignored, as are the columns named in `ignore`; payloads are compared path by path.
    """
    import pandas as pd

    before = _events_by_request(old)
    after = _events_by_request(new)
    skip = set(ignore)
    rows: list[tuple[str, str, str | None, Any, Any]] = []
    unchanged = 0
    for request_id in [*before, *(r for r in after if r not in before)]:
        olds, news = before.get(request_id, []), after.get(request_id, [])
        found = len(rows)
        for index in range(max(len(olds), len(news))):
            if index >= len(news):
                rows.append((request_id, "dropped", None, olds[index].get("event"), None))
            elif index >= len(olds):
                rows.append((request_id, "added", None, None, news[index].get("event")))
            else:
                was, now = olds[index], news[index]
                fields = skip | _FAILURE_TEXTS if _same_failure(was, now) else skip
                rows.extend(
                    (request_id, "changed", name, was, now)
                    for name, was, now in _changed_fields(was, now, fields)
                )
        unchanged += len(rows) == found
    frame = pd.DataFrame(rows, columns=["request_id", "change", "field", "old", "new"])
    return Diff(frame, len(set(before) | set(after)), unchanged)


def _events_by_request(source: HasEvents | pd.DataFrame) -> dict[str, list[dict[str, Any]]]:
    frame = cast("pd.DataFrame", getattr(source, "frame", source))  # a ReplayResult, or a frame
    grouped: dict[str, list[dict[str, Any]]] = {}
    # An events frame's column names are strings.
    for record in cast("list[dict[str, Any]]", frame.to_dict("records")):
        grouped.setdefault(str(record.get("request_id")), []).append(_comparable(record))
    return grouped


def _comparable(record: dict[str, Any]) -> dict[str, Any]:
    """An event row as flat field -> value, payload spread into `payload.<path>`, gaps dropped."""
    flat: dict[str, Any] = {}
    for name, value in record.items():
        if name == "payload" and isinstance(value, dict):
            flat.update(flatten_paths(value, "payload") if value else {"payload": value})
        elif not is_missing(value):
            flat[name] = value
    return flat


# A failure event's own texts: why it failed, and the template's output it failed on.
_FAILURE_TEXTS = frozenset({"error", "payload.error", "payload.rendered"})
# Where an error points: a line, column or character of the template or of its output.
_POSITION = re.compile(r"\b(line|column|char|position) \d+")


def _same_failure(old: dict[str, Any], new: dict[str, Any]) -> bool:
    """Whether two events of one request are the same failure: both failed, with errors that
    differ at most in where they point. A template edited elsewhere (a line added above, a
    longer name before the culprit) moves its failures without changing them; the output they
    failed on differs then too, and neither counts as a change."""
    if not (old.get("failed") and new.get("failed")):
        return False
    was, now = old.get("error"), new.get("error")
    if not isinstance(was, str) or not isinstance(now, str):
        return False
    return _POSITION.sub(r"\1 #", was) == _POSITION.sub(r"\1 #", now)


def _changed_fields(
    old: dict[str, Any], new: dict[str, Any], skip: set[str]
) -> Iterable[tuple[str, Any, Any]]:
    for name in [*old, *(n for n in new if n not in old)]:
        if name in skip:
            continue
        was, now = old.get(name), new.get(name)
        if was != now and (name != "related" or _beyond_roles(was) != _beyond_roles(now)):
            yield name, was, now


def _beyond_roles(related: Any) -> Any:
    """Related resources without what their `related.<role>` columns show (the id of the
    first resource in each role): a sender's id that changed is one change, not two."""
    if not isinstance(related, list):
        return related
    shown: set[str] = set()
    rest = []
    for item in related:
        role = item.get(RESOURCE_ROLE) if isinstance(item, dict) else None
        if role and role not in shown:
            shown.add(role)
            item = {label: value for label, value in item.items() if label != RESOURCE_ID}
        rest.append(item)
    return rest
