"""A Prefect API's event feed as a DataFrame with the columns of `Workspace.events()`.

>>> read_events("http://127.0.0.1:4200/api", since="1h", until="now")   # doctest: +SKIP
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any

from hooklab.core.errors import InvalidInput
from hooklab.core.times import iso, utcnow
from hooklab.prefect.client import Credentials, PrefectApi, PrefectError
from hooklab.store.contract import EVENT_COLUMNS
from hooklab.store.filters import parse_time

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["FAILED_EVENT", "PAGE_SIZE", "read_events"]

PAGE_SIZE = 50  # Prefect's most per page
FAILED_EVENT = "prefect-cloud.webhook.failed"
WEBHOOK_PREFIX = "prefect-cloud.webhook."
# A progress callable hears (events read, events in all) once the read passes this many pages.
PROGRESS_AFTER_PAGES = 3

Progress = Callable[[int, int], None]


def read_events(
    api_url: str,
    *,
    since: datetime | str,
    until: datetime | str | None = None,
    event: str | None = None,
    resource: str | None = None,
    limit: int | None = None,
    api_key: str | None = None,
    auth_string: str | None = None,
    progress: Progress | None = None,
) -> pd.DataFrame:
    """Prefect's events that occurred in [since, until) (until: now), oldest first.

    `event` keeps one event name (a name ending in `*` is a prefix), `resource` one resource
    id; `limit` stops after that many. Every page is read (Prefect gives 50 at a time); past a
    few pages `progress(done, total)` is called, e.g. with a notebook's or the CLI's bar.
    The columns are those of `Workspace.events()`: events hooklab forwarded keep their webhook
    (from the related `webhook` resource) and failures their `error`; `request_id` is empty.
    """
    from hooklab.store.frames import events_frame

    start = parse_time(since)
    end = utcnow() if until is None or until == "now" else parse_time(until)
    if end <= start:
        raise InvalidInput(f"until ({iso(end)}) must come after since ({iso(start)})")
    if limit is not None and limit <= 0:
        raise InvalidInput("limit must be a positive number")
    api = PrefectApi(api_url, Credentials.resolve(api_key, auth_string))
    names: dict[str, str] = {}
    found = _pages(api, _filter(start, end, event, resource), limit, progress)
    rows = [_row(one, names) for one in found]  # read whole first: `names` fills as it goes
    return events_frame(list(EVENT_COLUMNS), rows, names)


def _filter(
    since: datetime, until: datetime, event: str | None, resource: str | None
) -> dict[str, Any]:
    body: dict[str, Any] = {"occurred": {"since": iso(since), "until": iso(until)}, "order": "ASC"}
    if event:
        key = "prefix" if event.endswith("*") else "name"
        body["event"] = {key: [event.rstrip("*")]}
    if resource:
        body["resource"] = {"id": [resource]}
    return body


def _pages(
    api: PrefectApi, where: dict[str, Any], limit: int | None, progress: Progress | None
) -> Iterator[dict[str, Any]]:
    page = _page(api.post("/events/filter", {"filter": where, "limit": PAGE_SIZE}), api)
    done, pages = 0, 1
    while True:
        total = int(page.get("total") or 0)
        for found in page["events"]:
            if limit is not None and done >= limit:
                return
            done += 1
            yield found
        if progress is not None and pages >= PROGRESS_AFTER_PAGES:
            progress(done, total if limit is None else min(total, limit))
        following = page.get("next_page")
        if not following or (limit is not None and done >= limit):
            return
        page = _page(api.request("GET", following), api)
        pages += 1


def _page(answer: Any, api: PrefectApi) -> dict[str, Any]:
    """A page of events as Prefect gives it, or one line saying this is not one."""
    if not isinstance(answer, dict) or not isinstance(answer.get("events"), list):
        raise _not_events(api, "gave no events page")
    if not all(_is_event(found) for found in answer["events"]):
        raise _not_events(api, "gave a page whose events are not Prefect's")
    following = answer.get("next_page")
    if not (following is None or isinstance(following, str)) or not isinstance(
        answer.get("total", 0), (int, type(None))
    ):
        raise _not_events(api, "gave a page with a wrong next_page or total")
    return answer


def _is_event(found: Any) -> bool:
    """Shaped as Prefect's event, as far as `_row` reads it."""
    return (
        isinstance(found, dict)
        and all(isinstance(found.get(key), str) for key in ("id", "event", "occurred"))
        and all(isinstance(found.get(key), (str, type(None))) for key in ("received", "follows"))
        and isinstance(found.get("resource") or {}, dict)
        and isinstance(found.get("related") or [], list)
        and all(isinstance(item, dict) for item in found.get("related") or [])
    )


def _not_events(api: PrefectApi, what: str) -> PrefectError:
    return PrefectError(
        404,
        f"{api.url} does not look like a Prefect API (POST /events/filter {what}): give the "
        "API URL, e.g. http://127.0.0.1:4200/api",
        retry=False,
    )


def _row(found: dict[str, Any], names: dict[str, str]) -> tuple[Any, ...]:
    """A Prefect event as a stored event's row (EVENT_COLUMNS), JSON columns as text."""
    related = found.get("related") or []
    webhook_id = None
    for item in related:
        rid = str(item.get("prefect.resource.id", ""))
        if item.get("prefect.resource.role") == "webhook" and rid.startswith(WEBHOOK_PREFIX):
            webhook_id = rid[len(WEBHOOK_PREFIX) :]
            if item.get("prefect.resource.name"):
                names[webhook_id] = str(item["prefect.resource.name"])
            break
    payload = found.get("payload") or {}
    failed = found.get("event") == FAILED_EVENT
    if failed and webhook_id is None:  # a failure's webhook is its resource
        rid = str((found.get("resource") or {}).get("prefect.resource.id", ""))
        if rid.startswith(WEBHOOK_PREFIX):
            webhook_id = rid[len(WEBHOOK_PREFIX) :]
    columns = {
        "id": found["id"],
        "occurred": found["occurred"],
        "received": found.get("received") or found["occurred"],
        "event": found["event"],
        "resource": json.dumps(found.get("resource") or {}),
        "related": json.dumps(related),
        "payload": json.dumps(payload),
        "follows": found.get("follows"),
        "webhook_id": webhook_id,
        "request_id": None,
        "failed": failed,
        "error": payload.get("error") if failed and isinstance(payload, dict) else None,
    }
    return tuple(columns[name] for name in EVENT_COLUMNS)
