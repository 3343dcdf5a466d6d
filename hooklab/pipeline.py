"""The pure request-to-event pipeline: context, render, parse, validate; or the failure event."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from hooklab.events import (
    EventError,
    ReceivedEvent,
    RelatedResource,
    Resource,
    uuid7,
    validate_event,
)
from hooklab.request import BodyError, HookRequest, TemplateContext, template_context
from hooklab.templates import MAX_OUTPUT_BYTES, MAX_RENDER_SECONDS, TemplateError, compile_template
from hooklab.timeutil import Clock, utcnow
from hooklab.webhooks import Webhook

FAILED_EVENT = "prefect-cloud.webhook.failed"
IdSource = Callable[[], UUID]


@dataclass(frozen=True)
class Budgets:
    """hooklab's limits on one render (SPEC 4), beyond Prefect's."""

    max_output: int = MAX_OUTPUT_BYTES
    max_seconds: float = MAX_RENDER_SECONDS


DEFAULT_BUDGETS = Budgets()


@dataclass(frozen=True)
class Outcome:
    """What one request produced: a status, its events (a failure event on error), and why."""

    status: int
    events: tuple[ReceivedEvent, ...] = ()
    error: str | None = None
    rendered: str | None = None
    webhook_id: str | None = None
    request: HookRequest | None = field(default=None, repr=False)

    @property
    def failed(self) -> bool:
        return self.error is not None

    @property
    def event(self) -> ReceivedEvent | None:
        """The first event, which for most webhooks is the only one."""
        return self.events[0] if self.events else None


def render_events(
    webhook: Webhook,
    request: HookRequest,
    *,
    clock: Clock = utcnow,
    new_id: IdSource = uuid7,
    budgets: Budgets = DEFAULT_BUDGETS,
) -> Outcome:
    """Turn one request into events through the webhook's template, never raising.

    >>> from hooklab.timeutil import utcnow
    >>> hook = Webhook("1", "demo", '{"event": "hi", "resource": {"prefect.resource.id": "x"}}',
    ...                "slug", utcnow(), utcnow())
    >>> render_events(hook, HookRequest.fake()).status
    204
    """
    rendered: str | None = None
    try:
        context = template_context(request)
        template = compile_template(webhook.template)
        rendered = template.render(
            context.as_dict(), max_output=budgets.max_output, max_seconds=budgets.max_seconds
        )
        partials = _parse_output(rendered, allow_list="from_cloud_event" in webhook.template)
        events = tuple(_complete_numbered(partials, webhook, request, context, clock, new_id))
    except (BodyError, TemplateError, EventError, OutputError) as exc:
        return failure(webhook, request, str(exc), rendered=rendered, clock=clock, new_id=new_id)
    except Exception as exc:  # a filter or the CloudEvents SDK raising something unforeseen
        reason = f"{type(exc).__name__}: {' '.join(str(exc).split())}"
        return failure(webhook, request, reason, rendered=rendered, clock=clock, new_id=new_id)
    return Outcome(204, events, rendered=rendered, webhook_id=webhook.id, request=request)


class OutputError(ValueError):
    """Rendered text that is not a JSON object."""


def _parse_output(rendered: str, *, allow_list: bool) -> list[dict[str, Any]]:
    try:
        value = json.loads(rendered)
    except json.JSONDecodeError as exc:
        raise OutputError(
            f"Template output is not valid JSON: {exc.msg} at line {exc.lineno} column "
            f"{exc.colno} (char {exc.pos})"
        ) from None
    if isinstance(value, dict):
        return [value]
    # A CloudEvents batch renders a list: one event per CloudEvent (a hooklab extension).
    if allow_list and isinstance(value, list) and all(isinstance(item, dict) for item in value):
        if not value:
            raise OutputError("Template output is an empty list: a batch needs one CloudEvent")
        return value
    raise OutputError(f"Template output must be a JSON object, not {_json_kind(value)}")


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return "an array"


def _complete_numbered(
    partials: list[dict[str, Any]],
    webhook: Webhook,
    request: HookRequest,
    context: TemplateContext,
    clock: Clock,
    new_id: IdSource,
) -> list[ReceivedEvent]:
    """Complete each partial event; in a batch, an error says which event it is about."""
    events = []
    for number, partial in enumerate(partials, start=1):
        try:
            events.append(_complete(partial, webhook, request, context, clock, new_id))
        except EventError as exc:
            if len(partials) == 1:
                raise
            raise EventError(f"Event {number} of {len(partials)}: {exc}") from None
    return events


def _complete(
    partial: dict[str, Any],
    webhook: Webhook,
    request: HookRequest,
    context: TemplateContext,
    clock: Clock,
    new_id: IdSource,
) -> ReceivedEvent:
    data = dict(partial)
    if "occurred" not in data:
        data["occurred"] = clock()
    if "id" not in data:
        data["id"] = new_id()
    if "payload" not in data:
        data["payload"] = default_payload(context)
    event = validate_event(data)
    # Built here from known-good strings, so it needs no validation.
    related = [*event.related, RelatedResource.model_construct(webhook.related_resource())]
    values = {**event.__dict__, "related": related, "received": request.received}
    return ReceivedEvent.model_construct(**values)


def default_payload(context: TemplateContext) -> dict[str, Any]:
    """The payload of an event whose template gave none (SPEC 5.4): what the template saw,
    but for hooklab's `query` extension."""
    return {"method": context.method, "headers": context.headers.to_dict(), "body": context.body}


def failure(
    webhook: Webhook,
    request: HookRequest,
    error: str,
    *,
    status: int = 400,
    rendered: str | None = None,
    clock: Clock = utcnow,
    new_id: IdSource = uuid7,
) -> Outcome:
    """The `prefect-cloud.webhook.failed` outcome for a request that produced no event (SPEC 7)."""
    reason = " ".join(error.split())
    event = ReceivedEvent.model_construct(
        occurred=clock(),
        event=FAILED_EVENT,
        resource=Resource.model_construct(
            {"prefect.resource.id": webhook.resource_id, "prefect.resource.name": webhook.name}
        ),
        related=[],
        payload={
            "method": request.method.upper(),
            "headers": request.visible_headers.to_dict(),
            "body": request.body_text(),
            "rendered": rendered,
            "error": reason,
        },
        id=new_id(),
        follows=None,
        received=request.received,
    )
    return Outcome(status, (event,), reason, rendered, webhook.id, request)
