"""Which part of the history a read selects: `HistoryFilter`, and the one parser of its times.

The magics, the CLI and `Workspace.events()/requests()/captured()` all take a `HistoryFilter`;
`--since`/`--until` are read by `parse_time` wherever they are typed.
"""

from __future__ import annotations

import argparse
import re
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from typing import Any

from hooklab.core import times
from hooklab.core.errors import InvalidInput

AGE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*", re.IGNORECASE)
UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
ACCEPTED = "ISO 8601 (2026-05-01T12:00, UTC unless it gives an offset) or an age (30m, 2h, 1d, 1w)"


class TimeFormatError(argparse.ArgumentTypeError, InvalidInput):
    """Text that is not a time. A ValueError to Python callers (`InvalidInput`); an
    ArgumentTypeError so that argparse (the CLI's and the magics') reports its message as it
    is, on one line."""


def checked_time(text: str) -> str:
    """An argparse type: a time `parse_time` reads, kept as text so that an age is counted
    back from the clock of the workspace it is applied to (a deterministic one, say)."""
    parse_time(text)
    return text


def parse_time(text: str | datetime, *, now: datetime | None = None) -> datetime:
    """A time given as ISO 8601 (UTC unless it gives an offset), or as an age: a number and
    s, m, h, d or w (`30m`, `1.5h`, `2d`, `1w`), counted back from `now` (default: the clock).

    >>> parse_time("2026-01-02T03:04:05Z").isoformat()
    '2026-01-02T03:04:05+00:00'
    >>> parse_time("2h", now=parse_time("2026-01-02 12:00")).isoformat()
    '2026-01-02T10:00:00+00:00'
    """
    if isinstance(text, datetime):
        return text if text.tzinfo else text.replace(tzinfo=timezone.utc)
    age = AGE.fullmatch(text)
    if age:
        amount, unit = float(age.group(1)), UNITS[age.group(2).lower()]
        return (now or times.utcnow()) - timedelta(**{unit: amount})
    try:
        return times.parse_iso(text.strip())
    except ValueError:
        raise TimeFormatError(f"{text!r} is not a time: use {ACCEPTED}") from None


@dataclass(frozen=True)
class HistoryFilter:
    """What a history read keeps: one webhook, one event name, a time window, failures only.

    `webhook` is what a person typed (a name, id or slug, or the id of a deleted webhook);
    the Workspace resolves it to an id before the store reads. `since` is inclusive, `until`
    exclusive. For requests, `event` and `failed` keep the requests that produced such events.

    >>> HistoryFilter.of(since="2026-05-01", failed=True).since.isoformat()
    '2026-05-01T00:00:00+00:00'
    """

    webhook: str | None = None
    event: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    failed: bool | None = None

    @classmethod
    def of(
        cls,
        webhook: str | HistoryFilter | None = None,
        *,
        event: str | None = None,
        since: str | datetime | None = None,
        until: str | datetime | None = None,
        failed: bool | None = None,
        now: datetime | None = None,
    ) -> HistoryFilter:
        """A filter from keywords, times as text or datetimes (ages count back from `now`,
        the workspace's clock); a filter given first is narrowed by the keywords given."""
        base = webhook if isinstance(webhook, HistoryFilter) else cls(webhook)
        given: dict[str, Any] = {
            "event": event,
            "since": None if since is None else parse_time(since, now=now),
            "until": None if until is None else parse_time(until, now=now),
            "failed": failed,
        }
        return replace(base, **{k: v for k, v in given.items() if v is not None})


EVERYTHING = HistoryFilter()
