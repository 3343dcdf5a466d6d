"""The one request-to-event pipeline: a webhook's template compiled once, then for each request
its context, the render, json.loads and Prefect's validation; or the failure event.

The receiver, `replay`, `hooklab render` and the template editor all go through `Pipeline`.
Its shortcuts are chosen by the template's syntax tree and by the event, never by text, and
each is proven safe by a test of `hooklab.core.shortcuts`, where their conditions are:
- an event whose JSON is surely within Prefect's size limit (`surely_within_limits`) is
  validated once, without serializing it to measure it; any other event, and any event that
  fails, goes through `validate_event`, for Prefect's error texts;
- `Pipeline.draft` gives a plain event (`is_plain_event`: one that validation would take as it
  is) as a `PlainEvent`, the values its `ReceivedEvent` will hold, which pydantic builds only
  when asked: a replay of many requests reads most of them as DataFrame columns only.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple, NoReturn
from uuid import UUID

from pydantic import ValidationError

from hooklab.core.events import (
    EventError,
    ReceivedEvent,
    uuid7,
    validate_event,
)
from hooklab.core.outcome import IdSource, Outcome, Reason, failure
from hooklab.core.request import (
    BodyError,
    HookRequest,
    JsonTextError,
    read_json,
    template_variables,
)
from hooklab.core.shortcuts import is_plain_event, json_body, json_text, surely_within_limits
from hooklab.core.templates import (
    MAX_OUTPUT_BYTES,
    MAX_RENDER_SECONDS,
    Template,
    TemplateError,
    compile_template,
)
from hooklab.core.times import Clock, utcnow
from hooklab.core.webhooks import Webhook

# What a template is rendered with (`hooklab.core.request.template_variables`).
Variables = Mapping[str, Any]


@dataclass(frozen=True)
class Budgets:
    """hooklab's limits on one render (SPEC 4), beyond Prefect's."""

    max_output: int = MAX_OUTPUT_BYTES
    max_seconds: float = MAX_RENDER_SECONDS


DEFAULT_BUDGETS = Budgets()


class OutputError(ValueError):
    """Rendered text that is not a JSON object."""


class Pipeline:
    """A webhook's template, compiled once, turning requests into outcomes; never raises.

    >>> from hooklab.core.times import utcnow
    >>> hook = Webhook("1", "demo", '{"event": "hi", "resource": {"prefect.resource.id": "x"}}',
    ...                "slug", utcnow(), utcnow())
    >>> [outcome.status for outcome in Pipeline(hook).render_many([HookRequest.fake()] * 2)]
    [204, 204]

    A template that does not compile fails every request with its error and line, as the
    receiver answers them (`compile_template` raises the same error at once, for callers that
    want it before they start).
    """

    def __init__(
        self,
        webhook: Webhook,
        *,
        clock: Clock = utcnow,
        new_id: IdSource = uuid7,
        budgets: Budgets = DEFAULT_BUDGETS,
    ) -> None:
        self.webhook = webhook
        self.clock = clock
        self.new_id = new_id
        self.budgets = budgets
        self.template: Template | None = None
        self._broken: TemplateError | None = None
        try:
            self.template = compile_template(webhook.template)
        except TemplateError as exc:
            self._broken = exc
        self._related = webhook.related_resource()
        self._max_output, self._max_seconds = budgets.max_output, budgets.max_seconds

    def render(self, request: HookRequest) -> Outcome:
        """The outcome of one request: its events and a 204, or a failure event and why."""
        found = self._run(request, lazy=False)
        assert isinstance(found, Outcome)
        return found

    def draft(self, request: HookRequest) -> Outcome | PlainEvent:
        """What `render` gives, but a plain event as a `PlainEvent`, whose `outcome()` is that
        outcome (built on first use)."""
        return self._run(request, lazy=True)

    def draft_many(self, requests: Iterable[HookRequest]) -> Iterator[Outcome | PlainEvent]:
        """`draft` of each request, in order."""
        return map(functools.partial(self._run, lazy=True), requests)

    def _run(self, request: HookRequest, *, lazy: bool) -> Outcome | PlainEvent:
        rendered: str | None = None
        try:
            context = template_variables(request, json_body)
            template = self.template or self._broken_template()
            rendered = template.render(
                context, max_output=self._max_output, max_seconds=self._max_seconds
            )
            parsed = _parse_output(rendered, allow_list=template.renders_batches)
            # Whether the template gave every payload, asked before any default is filled in:
            # only then is the request's body not in the events.
            if isinstance(parsed, dict):
                own_payloads = "payload" in parsed
                if lazy:
                    fields = self._with_defaults(parsed, context)
                    if is_plain_event(fields, rendered, request, own_payload=own_payloads):
                        return _new_plain(PlainEvent, (
                            self, request, rendered, fields["id"], fields["occurred"],
                            fields["event"], fields["resource"],
                            [*fields.get("related", ()), self._related.copy()], fields["payload"],
                        ))  # fmt: skip
                partials = [parsed]
            else:
                partials = parsed
                own_payloads = all("payload" in partial for partial in partials)
            events = self._events(partials, context, rendered, request, own_payloads)
        except Exception as exc:
            return self._failure(request, exc, rendered)
        return Outcome(204, events, rendered=rendered, webhook_id=self.webhook.id, request=request)

    def _outcome_of(self, plain: PlainEvent) -> Outcome:
        request, rendered = plain.request, plain.rendered
        try:
            event = self._event(plain.fields, None, request, quick=True)
        except Exception as exc:
            return self._failure(request, exc, rendered)
        return Outcome(
            204, (event,), rendered=rendered, webhook_id=self.webhook.id, request=request
        )

    def _failure(self, request: HookRequest, exc: Exception, rendered: str | None) -> Outcome:
        reason, line = _reason_for(exc)
        error = _error_text(exc)
        if isinstance(exc, OutputError) and rendered is not None:
            error = self._with_cause(error, request, rendered)
        return failure(
            self.webhook,
            request,
            reason,
            error,
            line=line,
            rendered=rendered,
            clock=self.clock,
            new_id=self.new_id,
        )

    def _with_cause(self, error: str, request: HookRequest, rendered: str) -> str:
        """Output that is not JSON: the parser's words after the cause, said in a template
        author's (read only now, on a failure)."""
        from hooklab.core.culprit import json_error_cause, with_cause

        try:
            cause = json_error_cause(
                self.webhook.template, rendered, template_variables(request), error
            )
        except Exception:  # the explanation is a courtesy; the failure stands without it
            return error
        if cause is None:
            return error
        return with_cause(error, cause)

    def render_many(self, requests: Iterable[HookRequest]) -> Iterator[Outcome]:
        """The outcome of each request, in order."""
        return map(self.render, requests)

    def _broken_template(self) -> NoReturn:
        assert self._broken is not None
        raise self._broken

    def _events(
        self,
        partials: list[dict[str, Any]],
        context: Variables,
        rendered: str,
        request: HookRequest,
        own_payloads: bool,
    ) -> tuple[ReceivedEvent, ...]:
        """Complete each partial event; in a batch, an error says which event it is about.
        `own_payloads`: the template gave each its payload (none was filled in by default)."""
        # The request's body and headers are in an event only through the default payload.
        quick = surely_within_limits(rendered, None if own_payloads else request)
        if len(partials) == 1:
            return (self._event(partials[0], context, request, quick),)
        events = []
        for number, partial in enumerate(partials, start=1):
            try:
                events.append(self._event(partial, context, request, quick))
            except EventError as exc:
                raise EventError(f"Event {number} of {len(partials)}: {exc}") from None
        return tuple(events)

    def _event(
        self,
        partial: dict[str, Any],
        context: Variables | None,
        request: HookRequest,
        quick: bool,
    ) -> ReceivedEvent:
        """The event a partial event becomes once its defaults are filled in and it is checked."""
        fields = self._with_defaults(partial, context)
        related = fields.get("related", [])
        if quick and type(related) is list:
            try:
                return self._received(fields, related, request)
            except ValidationError:
                pass  # validated again below, for Prefect's error texts
        event = validate_event(fields)
        return self._received(dict(event), event.related, request)

    def _with_defaults(self, partial: dict[str, Any], context: Variables | None) -> dict[str, Any]:
        """A partial event (fresh from json.loads, so ours to fill in) with the fields the
        template left out: now, a new id and the default payload (None: filled in already)."""
        # Read in this order, so that seeded clocks and ids give the same events everywhere.
        if "occurred" not in partial:
            partial["occurred"] = self.clock()
        if "id" not in partial:
            partial["id"] = self.new_id()
        if "payload" not in partial and context is not None:
            partial["payload"] = default_payload(context)
        return partial

    def _received(
        self, fields: dict[str, Any], related: list[Any], request: HookRequest
    ) -> ReceivedEvent:
        """The stored event: the fields validated as Prefect would, the webhook appended to
        `related` (SPEC 5.5), and when the request came."""
        return ReceivedEvent.model_validate(
            {
                **fields,
                "related": [*related, self._related],
                "follows": fields.get("follows"),
                "received": request.received,
            }
        )


def render_many(
    webhook: Webhook,
    requests: Iterable[HookRequest],
    *,
    clock: Clock = utcnow,
    new_id: IdSource = uuid7,
    budgets: Budgets = DEFAULT_BUDGETS,
) -> Iterator[Outcome]:
    """Turn each request into events through the webhook's template, compiled once."""
    return Pipeline(webhook, clock=clock, new_id=new_id, budgets=budgets).render_many(requests)


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
    return Pipeline(webhook, clock=clock, new_id=new_id, budgets=budgets).render(request)


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


def _parse_output(rendered: str, *, allow_list: bool) -> dict[str, Any] | list[dict[str, Any]]:
    """The partial event the template rendered, or a batch of them."""
    try:
        value = read_json(rendered, json_text)
    except JsonTextError as exc:
        raise OutputError(f"Template output is not valid JSON: {exc}") from None
    if isinstance(value, dict):
        return value
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


def default_payload(variables: Variables) -> dict[str, Any]:
    """The payload of an event whose template gave none (SPEC 5.4): what the template saw
    (its variables), but for hooklab's `query` extension and the credentials hooklab never
    stores (`hooklab.core.credentials`)."""
    return {
        "method": variables["method"],
        "headers": variables["headers"].stored(),
        "body": variables["body"],
    }


# A PlainEvent from its values in order, without the keyword handling of its __new__.
_new_plain = tuple.__new__


class PlainEvent(NamedTuple):
    """A request's plain event (see `is_plain_event`): the values its `ReceivedEvent` will
    hold, before pydantic builds it. A tuple, because a replay makes one per request."""

    pipeline: Pipeline
    request: HookRequest
    rendered: str
    id: UUID
    occurred: datetime
    event: str
    resource: dict[str, str]
    related: list[dict[str, str]]  # the template's, then the webhook (SPEC 5.5)
    payload: dict[str, Any]

    @property
    def fields(self) -> dict[str, Any]:
        """The event as the template gave it, with its defaults filled in."""
        return {
            "occurred": self.occurred,
            "event": self.event,
            "resource": self.resource,
            "related": self.related[:-1],
            "payload": self.payload,
            "id": self.id,
        }

    def outcome(self) -> Outcome:
        """The outcome `Pipeline.render` gives for this request."""
        return self.pipeline._outcome_of(self)
