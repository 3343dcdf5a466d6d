"""The pure request-to-event pipeline: context, render, parse, validate; or the failure event."""

from __future__ import annotations

import itertools
import json
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, TypeVar
from uuid import UUID

from hooklab.core.events import (
    MAXIMUM_EVENT_NAME_LENGTH,
    MAXIMUM_LABELS_PER_RESOURCE,
    MAXIMUM_RELATED_RESOURCES,
    MAXIMUM_SIZE_BYTES,
    EventError,
    ReceivedEvent,
    RelatedResource,
    Resource,
    uuid7,
    validate_event,
)
from hooklab.core.outcome import IdSource, Outcome, Reason, failure
from hooklab.core.request import BodyError, HookRequest, TemplateContext, template_context
from hooklab.core.templates import (
    MAX_OUTPUT_BYTES,
    MAX_RENDER_SECONDS,
    TemplateError,
    compile_template,
)
from hooklab.core.times import Clock, utcnow
from hooklab.core.webhooks import Webhook


@dataclass(frozen=True)
class Budgets:
    """hooklab's limits on one render (SPEC 4), beyond Prefect's."""

    max_output: int = MAX_OUTPUT_BYTES
    max_seconds: float = MAX_RENDER_SECONDS


DEFAULT_BUDGETS = Budgets()


def render_events(
    webhook: Webhook,
    request: HookRequest,
    *,
    clock: Clock = utcnow,
    new_id: IdSource = uuid7,
    budgets: Budgets = DEFAULT_BUDGETS,
) -> Outcome:
    """Turn one request into events through the webhook's template, never raising.

    >>> from hooklab.core.times import utcnow
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
        events = tuple(
            _complete_numbered(partials, webhook, request, context, rendered, clock, new_id)
        )
    except Exception as exc:
        reason, line = _reason_for(exc)
        return failure(
            webhook,
            request,
            reason,
            _error_text(exc),
            line=line,
            rendered=rendered,
            clock=clock,
            new_id=new_id,
        )
    return Outcome(204, events, rendered=rendered, webhook_id=webhook.id, request=request)


class OutputError(ValueError):
    """Rendered text that is not a JSON object."""


_REASONS: tuple[tuple[type[Exception], Reason], ...] = (
    (BodyError, Reason.BAD_BODY),
    (TemplateError, Reason.RENDER_ERROR),
    (OutputError, Reason.INVALID_OUTPUT),
    (EventError, Reason.INVALID_EVENT),
)


def _reason_for(exc: Exception) -> tuple[Reason, int | None]:
    """The failure reason of an exception raised between the body and the event, and the
    template line it names. Anything unforeseen comes from a filter or the CloudEvents SDK
    while rendering."""
    for kind, reason in _REASONS:
        if isinstance(exc, kind):
            return reason, getattr(exc, "lineno", None) if reason is Reason.RENDER_ERROR else None
    return Reason.RENDER_ERROR, None


def _error_text(exc: Exception) -> str:
    if isinstance(exc, (BodyError, TemplateError, OutputError, EventError)):
        return str(exc)
    return f"{type(exc).__name__}: {' '.join(str(exc).split())}"


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
    rendered: str,
    clock: Clock,
    new_id: IdSource,
) -> list[ReceivedEvent]:
    """Complete each partial event; in a batch, an error says which event it is about."""
    events = []
    for number, partial in enumerate(partials, start=1):
        plain = is_plain_event(partial, rendered, request)
        try:
            events.append(_complete(partial, webhook, request, context, clock, new_id, plain))
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
    plain: bool = False,
) -> ReceivedEvent:
    """The event a partial event becomes once its defaults are filled in and it is checked;
    `plain`: `is_plain_event` said pydantic would take it unchanged."""
    data = dict(partial)
    if "occurred" not in data:
        data["occurred"] = clock()
    if "id" not in data:
        data["id"] = new_id()
    if "payload" not in data:
        data["payload"] = default_payload(context)
    if plain:
        built = _plain_event(data, webhook, request)
        if built is not None:
            return built
    event = validate_event(data)
    # Built here from known-good strings, so it needs no validation.
    related = [*event.related, RelatedResource.model_construct(webhook.related_resource())]
    values = {**event.__dict__, "related": related, "received": request.received}
    return ReceivedEvent.model_construct(**values)


_OWN_FIELDS = frozenset({"occurred", "id"})
_RESOURCE_ID = "prefect.resource.id"
_RESOURCE_ROLE = "prefect.resource.role"
# What pydantic cannot serialize: lone surrogates (raw, or as JSON escapes that decode to them).
_SURROGATE = re.compile(r"[\ud800-\udfff]|\\u[dD][89a-fA-F]")
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
# Pydantic refuses to serialize values nested past 255 levels; an event built from text with
# fewer opening brackets than this cannot come near.
_BRACKETS_SURELY_SHALLOW = 200


def is_plain_event(value: dict[str, Any], rendered: str, request: HookRequest) -> bool:
    """True when Prefect's validation would take this partial event (rendered from `request`)
    unchanged, once the defaults are filled in, and its size check cannot fail.

    A plain event has no `occurred`, `id` or `follows` of its own, a name and string labels
    within Prefect's limits, and comes from text small enough that the serialized event is
    surely under the size limit. For one, the pipeline builds the event without pydantic (the
    same event, field for field); anything else is validated, and fails with Prefect's texts.
    """
    if not _OWN_FIELDS.isdisjoint(value) or value.get("follows") is not None:
        return False
    name = value.get("event")
    if type(name) is not str or len(name) > MAXIMUM_EVENT_NAME_LENGTH:
        return False
    if not _is_plain_resource(value.get("resource"), role=False):
        return False
    if "related" in value:
        related = value["related"]
        if type(related) is not list or len(related) > MAXIMUM_RELATED_RESOURCES:
            return False
        if not all(_is_plain_resource(item, role=True) for item in related):
            return False
    if "payload" in value and type(value["payload"]) is not dict:
        return False
    return _surely_serializable(rendered, request)


def _is_plain_resource(resource: Any, *, role: bool) -> bool:
    if type(resource) is not dict or len(resource) > MAXIMUM_LABELS_PER_RESOURCE:
        return False
    if not resource.get(_RESOURCE_ID) or (role and not resource.get(_RESOURCE_ROLE)):
        return False
    try:
        "".join(resource.values())  # the quickest check that every label is a string
    except TypeError:
        return False
    return True


def _surely_serializable(rendered: str, request: HookRequest) -> bool:
    """True when the event's JSON is surely under Prefect's size limit and pydantic can write
    it. Everything in the event comes from the rendered text, the body or the headers, and a
    character becomes at most 6 bytes of JSON (a \\uXXXX escape)."""
    body = request.body
    header_chars = sum(map(len, itertools.chain.from_iterable(request.headers)))
    if 6 * (len(rendered) + len(body) + header_chars) + 4096 >= MAXIMUM_SIZE_BYTES:
        return False
    # (ASCII text holds no raw surrogate, and without a backslash-u no escape of one either.)
    if (not rendered.isascii() or "\\u" in rendered) and _SURROGATE.search(rendered):
        return False
    if b"\\u" in body and _SURROGATE_ESCAPE.search(body):
        return False
    brackets = rendered.count("{") + rendered.count("[") + body.count(b"{") + body.count(b"[")
    return brackets < _BRACKETS_SURELY_SHALLOW


def _plain_event(
    data: dict[str, Any], webhook: Webhook, request: HookRequest
) -> ReceivedEvent | None:
    """The event `validate_event` would give for a plain event with its defaults filled in;
    None when the clock or the id source gave something other than a UTC datetime and a UUID
    (then pydantic decides)."""
    occurred, event_id = data["occurred"], data["id"]
    if type(occurred) is not datetime or occurred.tzinfo is not timezone.utc:
        return None
    if type(event_id) is not UUID:
        return None
    related = [_trusted_resource(RelatedResource, item) for item in data.get("related", ())]
    related.append(_trusted_resource(RelatedResource, webhook.related_resource()))
    event = ReceivedEvent.__new__(ReceivedEvent)
    values = {
        "occurred": occurred,
        "event": data["event"],
        "resource": _trusted_resource(Resource, data["resource"]),
        "related": related,
        "payload": dict(data["payload"]),  # pydantic's copy
        "id": event_id,
        "follows": None,
        "received": request.received,
    }
    _set(event, "__dict__", values)
    _set(event, "__pydantic_fields_set__", set(values))
    _set(event, "__pydantic_extra__", None)
    _set(event, "__pydantic_private__", None)
    return event


# What `model_construct` does once it has every field's value, without its search for aliases
# and defaults, which cost more than the rest of the plain lane. The tests compare the result
# with pydantic's own, field by field (`tests/test_pipeline.py`).
_set = object.__setattr__
_ResourceModel = TypeVar("_ResourceModel", bound=Resource)


def _trusted_resource(model: type[_ResourceModel], labels: dict[str, str]) -> _ResourceModel:
    resource = model.__new__(model)
    _set(resource, "__dict__", {"root": labels})
    _set(resource, "__pydantic_fields_set__", {"root"})
    return resource


def default_payload(context: TemplateContext) -> dict[str, Any]:
    """The payload of an event whose template gave none (SPEC 5.4): what the template saw,
    but for hooklab's `query` extension."""
    return {"method": context.method, "headers": context.headers.to_dict(), "body": context.body}
