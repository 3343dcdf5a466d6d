"""What a request produced: an `Outcome` with its status, events and a typed failure reason."""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from uuid import UUID

from hooklab.core.events import ReceivedEvent, Resource, uuid7
from hooklab.core.request import HookRequest
from hooklab.core.times import Clock, utcnow
from hooklab.core.webhooks import Webhook

FAILED_EVENT = "prefect-cloud.webhook.failed"
IdSource = Callable[[], UUID]


class Reason(str, enum.Enum):
    """Why a request produced no event. Each reason has one HTTP status (SPEC 2, 12): the
    receiver, the widgets and the magics read this, never the error text."""

    NOT_FOUND = "not-found"
    UNAUTHORIZED = "unauthorized"
    BAD_SIGNATURE = "bad-signature"
    DISABLED = "disabled"
    TOO_LARGE = "too-large"
    BAD_BODY = "bad-body"
    RENDER_ERROR = "render-error"
    INVALID_OUTPUT = "invalid-output"
    INVALID_EVENT = "invalid-event"

    @property
    def status(self) -> int:
        """The answer a sender gets for this reason."""
        return _STATUS.get(self, 400)


_STATUS = {
    Reason.NOT_FOUND: 404,
    Reason.UNAUTHORIZED: 401,
    Reason.BAD_SIGNATURE: 401,
    Reason.TOO_LARGE: 413,
}


@dataclass(frozen=True)
class Outcome:
    """What one request produced: a status, its events (a failure event on error), and why.

    `reason` says what kind of failure it was and `line` which template line it comes from,
    where there is one; `error` is the one-line text for people.
    """

    status: int
    events: tuple[ReceivedEvent, ...] = ()
    error: str | None = None
    rendered: str | None = None
    webhook_id: str | None = None
    request: HookRequest | None = field(default=None, repr=False)
    reason: Reason | None = None
    line: int | None = None

    @property
    def failed(self) -> bool:
        return self.error is not None

    @property
    def event(self) -> ReceivedEvent | None:
        """The first event, which for most webhooks is the only one."""
        return self.events[0] if self.events else None


def not_found(request: HookRequest) -> Outcome:
    """The outcome of a request to an unknown or rotated slug: a 404, nothing recorded."""
    return Outcome(Reason.NOT_FOUND.status, request=request, reason=Reason.NOT_FOUND)


def failure(
    webhook: Webhook,
    request: HookRequest,
    reason: Reason,
    error: str,
    *,
    line: int | None = None,
    rendered: str | None = None,
    clock: Clock = utcnow,
    new_id: IdSource = uuid7,
) -> Outcome:
    """The `prefect-cloud.webhook.failed` outcome for a request that produced no event (SPEC 7)."""
    text = " ".join(error.split())
    event = ReceivedEvent.model_construct(
        occurred=clock(),
        event=FAILED_EVENT,
        resource=Resource.model_construct(
            {"prefect.resource.id": webhook.resource_id, "prefect.resource.name": webhook.name}
        ),
        related=[],
        payload={
            "method": request.method.upper(),
            "headers": request.visible_headers.stored(),
            "body": request.body_text(),
            "rendered": rendered,
            "error": text,
        },
        id=new_id(),
        follows=None,
        received=request.received,
    )
    return Outcome(
        reason.status, (event,), text, rendered, webhook.id, request, reason=reason, line=line
    )
