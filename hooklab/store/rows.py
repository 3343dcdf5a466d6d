"""Rows as both backends write and read them: webhooks, requests and events as tuples of
plain values, and history filters as SQL conditions.

A row read back is read by name: each table's columns are the fields of a named tuple
(`WebhookRow`, `RequestRow`), and the SELECT lists are made from those fields, so a row and
its names cannot disagree. Rows written are plain tuples in the same order (the receiver's
write path makes two per request, and a tuple is the cheapest to make).

SQLite keeps times as ISO text and flags as integers; PostgreSQL as `timestamptz` and
`boolean`. Each backend passes its own `time` and `flag` functions, so there is one mapping.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from typing import Any, NamedTuple

from hooklab.core.events import ReceivedEvent
from hooklab.core.outcome import Outcome
from hooklab.core.request import HookRequest
from hooklab.core.times import iso, parse_iso
from hooklab.core.webhooks import Webhook
from hooklab.store.contract import Destination, StoredRequest
from hooklab.store.filters import HistoryFilter
from hooklab.store.values import stored_json, stored_json_ascii


class WebhookRow(NamedTuple):
    """A row of the webhooks table, as stored (times and flags as the backend keeps them)."""

    id: str
    name: str
    description: str
    template: str
    enabled: Any
    service_account_id: str | None
    slug: str
    created: Any
    updated: Any
    signature_preset: str | None
    signature_secret: str | None


class RequestRow(NamedTuple):
    """A row of the requests table, as stored."""

    id: str
    webhook_id: str | None
    method: str
    path: str
    query: str
    headers: str  # JSON text of [name, value] pairs
    body: bytes
    received: Any
    client: str
    status: int
    error: str | None
    rendered: str | None


WEBHOOK_COLUMNS = ", ".join(WebhookRow._fields)
REQUEST_COLUMNS = ", ".join(RequestRow._fields)
EVENT_INSERT_COLUMNS = (
    "id, request_id, webhook_id, event, occurred, received, resource, related, payload, "
    "follows, failed, error"
)

Time = Callable[[datetime], Any]  # a datetime as the backend stores it
Flag = Callable[[bool], Any]


def fast_iso(moment: datetime) -> str:
    """`iso`, quicker for the UTC times nearly every request and event carries."""
    if moment.tzinfo is timezone.utc:
        return moment.isoformat(timespec="microseconds")
    return iso(moment)


def as_time(value: Any) -> datetime:
    """A stored time (ISO text, or a datetime from PostgreSQL) as a UTC datetime."""
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc)
    return parse_iso(value)


def maybe_time(value: Any) -> datetime | None:
    return as_time(value) if value else None


def destination_from(row: Any, pending: Any, oldest: Any) -> Destination:
    """A forward_destinations row (either backend's named tuple: times as ISO text or as
    datetimes) and its pending count and oldest pending time, as a Destination."""
    return Destination(
        url=row.url,
        delivered=int(row.delivered),
        rejected=int(row.rejected),
        last_delivered=maybe_time(row.last_delivered),
        last_error=row.last_error,
        last_error_at=maybe_time(row.last_error_at),
        created=as_time(row.created),
        pending=int(pending),
        oldest_pending=maybe_time(oldest),
    )


def webhook_row(hook: Webhook, time: Time, flag: Flag) -> tuple[Any, ...]:
    return (
        hook.id,
        hook.name,
        hook.description,
        hook.template,
        flag(hook.enabled),
        hook.service_account_id,
        hook.slug,
        time(hook.created),
        time(hook.updated),
        hook.signature_preset,
        hook.signature_secret,
    )


def webhook_from(values: Sequence[Any]) -> Webhook:
    """A row of WEBHOOK_COLUMNS as a Webhook."""
    row = WebhookRow._make(values)
    return Webhook(
        id=row.id,
        name=row.name,
        description=row.description,
        template=row.template,
        enabled=bool(row.enabled),
        service_account_id=row.service_account_id,
        slug=row.slug,
        created=as_time(row.created),
        updated=as_time(row.updated),
        signature_preset=row.signature_preset,
        signature_secret=row.signature_secret,
    )


def request_row(request: HookRequest, outcome: Outcome, received: Any) -> tuple[Any, ...]:
    """A request's row (RequestRow's columns); `received` is its time as the backend stores
    it, made once for the request and its events."""
    clean = request.without_secrets()
    return (
        clean.id,
        outcome.webhook_id,
        clean.method,
        clean.path,
        clean.query,
        stored_json_ascii(clean.headers),
        clean.body,
        received,
        clean.client,
        outcome.status,
        outcome.error,
        outcome.rendered,
    )


def stored_request(values: Sequence[Any]) -> StoredRequest:
    """A row of REQUEST_COLUMNS as a StoredRequest."""
    row = RequestRow._make(values)
    request = HookRequest(
        id=row.id,
        method=row.method,
        path=row.path,
        query=row.query,
        headers=tuple((str(k), str(v)) for k, v in json.loads(row.headers)),
        body=bytes(row.body),
        received=as_time(row.received),
        client=row.client,
    )
    return StoredRequest(request, row.webhook_id, int(row.status), row.error, row.rendered)


def event_row(
    request: HookRequest,
    received: Any,
    outcome: Outcome,
    event: ReceivedEvent,
    time: Time,
    flag: Flag,
) -> tuple[Any, ...]:
    """An event's row; `received` is the request's time as its row has it (an event received
    with its request, as every event is, takes that value instead of making it again)."""
    failed = outcome.failed
    return (
        str(event.id),
        request.id,
        outcome.webhook_id,
        event.event,
        time(event.occurred),
        received if event.received == request.received else time(event.received),
        stored_json(event.resource.root),
        stored_json([r.root for r in event.related]),
        stored_json(event.payload),
        str(event.follows) if event.follows else None,
        flag(failed),
        outcome.error if failed else None,
    )


def encodable(value: Any) -> Any:
    """`value` with any lone surrogate (which UTF-8 cannot carry; JSON's `"\\ud800"` makes one)
    shown as U+FFFD. Only a batch that failed to encode pays for this: both backends then
    write it again with this, so the request is kept, as a NUL is, rather than refused as if
    the store were down."""
    if isinstance(value, str):
        return value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return value


def encodable_rows(rows: Sequence[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    return [tuple(encodable(value) for value in row) for row in rows]


Rows = list[tuple[Any, ...]]


def insert_kept(insert: Callable[[Rows, Rows], None], requests: Rows, events: Rows) -> None:
    """`insert(requests, events)`, once more with lone surrogates as U+FFFD if they stopped
    it (see `encodable`)."""
    try:
        insert(requests, events)
    except UnicodeEncodeError:
        insert(encodable_rows(requests), encodable_rows(events))


def outcome_rows(
    outcomes: Sequence[Outcome], time: Time, flag: Flag
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """The request rows and event rows of outcomes, each with its request."""
    requests: list[tuple[Any, ...]] = []
    events: list[tuple[Any, ...]] = []
    for outcome in outcomes:
        request = outcome.request
        if request is None:
            raise ValueError("an outcome without its request cannot be stored")
        received = time(request.received)
        requests.append(request_row(request, outcome, received))
        events.extend(event_row(request, received, outcome, e, time, flag) for e in outcome.events)
    return requests, events


def history_conditions(
    where: HistoryFilter, time: Time, flag: Flag, mark: str = "?"
) -> tuple[list[str], list[Any]]:
    """SQL conditions for a filter, on the columns requests and events share (the event name
    and `failed` are the events table's); `mark` is the backend's parameter placeholder."""
    clauses: list[str] = []
    params: list[Any] = []
    for value, column in (
        (where.webhook, "webhook_id ="),
        (where.event, "event ="),
        (None if where.since is None else time(where.since), "received >="),
        (None if where.until is None else time(where.until), "received <"),
        (None if where.failed is None else flag(where.failed), "failed ="),
    ):
        if value is not None:
            clauses.append(f"{column} {mark}")
            params.append(value)
    return clauses, params


def where_sql(clauses: Sequence[str]) -> str:
    return f" WHERE {' AND '.join(clauses)}" if clauses else ""


TABLES = ("service_accounts", "webhooks", "settings", "requests", "events")
"""What `hooklab store copy` copies, in an order that keeps references whole."""


def check_table(table: str) -> str:
    """A table's name, checked, since it goes into SQL."""
    if table not in TABLES:
        raise ValueError(f"No table {table!r}")
    return table
