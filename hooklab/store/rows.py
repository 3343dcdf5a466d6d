"""Rows as both backends write and read them: webhooks, requests and events as tuples of
plain values, and history filters as SQL conditions.

SQLite keeps times as ISO text and flags as integers; PostgreSQL as `timestamptz` and
`boolean`. Each backend passes its own `time` and `flag` functions, so there is one mapping.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from typing import Any

from hooklab.core.events import ReceivedEvent
from hooklab.core.outcome import Outcome
from hooklab.core.request import HookRequest
from hooklab.core.times import iso, parse_iso
from hooklab.core.webhooks import Webhook
from hooklab.store.contract import StoredRequest
from hooklab.store.filters import HistoryFilter
from hooklab.store.values import stored_json, stored_json_ascii

WEBHOOK_COLUMNS = (
    "id, name, description, template, enabled, service_account_id, slug, created, updated, "
    "signature_preset, signature_secret"
)
REQUEST_COLUMNS = (
    "id, webhook_id, method, path, query, headers, body, received, client, status, error, rendered"
)
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


def webhook_from(row: Sequence[Any]) -> Webhook:
    (id, name, description, template, enabled, account, slug, created, updated, preset, secret) = (
        row
    )
    return Webhook(
        id=id,
        name=name,
        description=description,
        template=template,
        enabled=bool(enabled),
        service_account_id=account,
        slug=slug,
        created=as_time(created),
        updated=as_time(updated),
        signature_preset=preset,
        signature_secret=secret,
    )


def request_row(request: HookRequest, outcome: Outcome, time: Time) -> tuple[Any, ...]:
    clean = request.without_secrets()
    return (
        clean.id,
        outcome.webhook_id,
        clean.method,
        clean.path,
        clean.query,
        stored_json_ascii(clean.headers),
        clean.body,
        time(clean.received),
        clean.client,
        outcome.status,
        outcome.error,
        outcome.rendered,
    )


def stored_request(row: Sequence[Any]) -> StoredRequest:
    """A row of REQUEST_COLUMNS as a StoredRequest."""
    (id, webhook_id, method, path, query, headers, body, received, client, status, error) = row[:11]
    request = HookRequest(
        id=id,
        method=method,
        path=path,
        query=query,
        headers=tuple((str(k), str(v)) for k, v in json.loads(headers)),
        body=bytes(body),
        received=as_time(received),
        client=client,
    )
    return StoredRequest(request, webhook_id, int(status), error, row[11])


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
        row = request_row(request, outcome, time)
        requests.append(row)
        events.extend(event_row(request, row[7], outcome, e, time, flag) for e in outcome.events)
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
