"""Replay captured requests through a template, and compare two replays event by event."""

from __future__ import annotations

import gc
import json
import operator
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime, timezone
from functools import cached_property
from typing import TYPE_CHECKING, Any, NamedTuple, Union
from uuid import UUID

from hooklab.core.events import ReceivedEvent, RelatedResource, Resource, uuid7
from hooklab.core.outcome import IdSource, Outcome
from hooklab.core.pipeline import Budgets, is_plain_event, render_events
from hooklab.core.request import BodyError, HookRequest, template_context
from hooklab.core.templates import Template, TemplateError, compile_template
from hooklab.core.times import Clock, utcnow
from hooklab.core.webhooks import Webhook
from hooklab.history.diffs import Diff, diff
from hooklab.store.sqlite import StoredRequest

if TYPE_CHECKING:
    import pandas as pd

    from hooklab.store.frames import EventColumns
    from hooklab.workspace import Workspace

__all__ = ["Diff", "ReplayResult", "diff", "draft_webhook", "replay"]

Requests = Union[Sequence[HookRequest | StoredRequest], "pd.DataFrame"]
Progress = Callable[[int, int], None]

# Below this many requests a replay is quick enough that a progress bar would only flicker.
PROGRESS_THRESHOLD = 1_000
DRAFT_WEBHOOK_ID = "00000000-0000-0000-0000-000000000000"
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


class _PlainEvent(NamedTuple):
    """An event that passed the plain-event check: everything an Outcome needs, unboxed
    (a tuple, because a replay makes one per request and nothing else)."""

    request: HookRequest
    webhook: Webhook
    rendered: str
    id: UUID
    occurred: datetime
    event: str
    resource: dict[str, str]
    related: list[dict[str, str]]
    payload: dict[str, Any]

    def outcome(self) -> Outcome:
        event = ReceivedEvent.model_construct(
            occurred=self.occurred,
            event=self.event,
            resource=Resource.model_construct(self.resource),
            related=[RelatedResource.model_construct(item) for item in self.related],
            payload=self.payload,
            id=self.id,
            follows=None,
            received=self.request.received,
        )
        return Outcome(204, (event,), None, self.rendered, self.webhook.id, self.request)


class ReplayResult:
    """What a replay produced: `.events`, `.failures` (DataFrames) and `.outcomes`.

    `.frame` holds both, one row per event, in request order, with the columns of
    `Workspace.events()`.
    """

    def __init__(self, items: list[_PlainEvent | Outcome], webhook_names: dict[str, str]) -> None:
        self._items = items
        self._webhook_names = webhook_names

    def __len__(self) -> int:
        return len(self._items)

    @cached_property
    def outcomes(self) -> list[Outcome]:
        return [item if isinstance(item, Outcome) else item.outcome() for item in self._items]

    @cached_property
    def frame(self) -> pd.DataFrame:
        """Every event, failures included, one row each."""
        with _gc_paused():
            return self._frame()

    def _frame(self) -> pd.DataFrame:
        from hooklab.store.frames import EventColumns, events_from_columns

        items = self._items
        if all(type(item) is _PlainEvent for item in items):
            return events_from_columns(_plain_columns(items), self._webhook_names)  # type: ignore[arg-type]
        columns = EventColumns()
        for item in items:
            if isinstance(item, _PlainEvent):
                columns.append(
                    str(item.id), item.occurred, item.request.received, item.event,
                    item.resource, item.related, item.payload, item.webhook.id,
                    item.request.id, False, None,
                )  # fmt: skip
                continue
            request_id = item.request.id if item.request else None
            for event in item.events:
                columns.append(
                    str(event.id), event.occurred, event.received, event.event,
                    event.resource.root, [r.root for r in event.related], event.payload,
                    item.webhook_id, request_id, item.failed, item.error,
                )  # fmt: skip
        return events_from_columns(columns, self._webhook_names)

    @property
    def events(self) -> pd.DataFrame:
        """The events the template produced, one row each."""
        frame = self.frame
        if not frame["failed"].any():
            return frame
        return frame[~frame["failed"]].reset_index(drop=True)

    @property
    def failures(self) -> pd.DataFrame:
        """The `prefect-cloud.webhook.failed` events, with the reason in `error`."""
        frame = self.frame
        return frame[frame["failed"]].reset_index(drop=True)

    @property
    def failed_count(self) -> int:
        return sum(1 for item in self._items if isinstance(item, Outcome) and item.failed)

    def summary(self) -> str:
        failed = self.failed_count
        return (
            f"{len(self)} requests replayed: {len(self) - failed} produced events, {failed} failed"
        )

    def __repr__(self) -> str:
        return f"<ReplayResult: {self.summary()}>"

    def _repr_html_(self) -> str:
        from hooklab.notebook.reprs import replay_html

        return replay_html(self)


_FIELDS = {name: operator.itemgetter(i) for i, name in enumerate(_PlainEvent._fields)}
_RECEIVED = operator.attrgetter("request.received")
_REQUEST_ID = operator.attrgetter("request.id")
_WEBHOOK_ID = operator.attrgetter("webhook.id")


def _plain_columns(items: list[_PlainEvent]) -> EventColumns:
    """Columns of plain events, one C-level pass per column."""
    from hooklab.store.frames import EventColumns

    def field(name: str) -> list[Any]:
        return list(map(_FIELDS[name], items))

    return EventColumns(
        id=list(map(str, field("id"))),
        occurred=field("occurred"),
        received=list(map(_RECEIVED, items)),
        event=field("event"),
        resource=field("resource"),
        related=field("related"),
        payload=field("payload"),
        webhook_id=list(map(_WEBHOOK_ID, items)),
        request_id=list(map(_REQUEST_ID, items)),
        failed=[False] * len(items),
        error=[None] * len(items),
    )


def replay(
    requests: Requests,
    template_or_webhook: str | Webhook,
    *,
    workspace: Workspace | None = None,
    save: bool = False,
    clock: Clock | None = None,
    new_id: IdSource | None = None,
    budgets: Budgets | None = None,
    progress: bool | Progress | None = None,
) -> ReplayResult:
    """Run captured requests through a template (or a webhook's), exactly as the receiver would.

    >>> result = replay([HookRequest.fake(method="POST", form={"model": "m1"})],
    ...                 '{"event": "e", "resource": {"prefect.resource.id": "{{ body.model }}"}}')
    >>> result.events["resource.id"].tolist()
    ['m1']

    The history is left alone unless `save=True` (then the results are stored as new requests
    in `workspace`). A template string keeps each captured request's original webhook (its id and
    name in `related`) when `workspace` knows it. `progress` is a bar in the notebook past 1,000
    requests (`None`), always/never (`True`/`False`), or a `callback(done, total)`.
    """
    if save and workspace is None:
        raise ValueError("replay(..., save=True) needs the workspace to save into")
    clock = clock or (workspace.clock if workspace else utcnow)
    new_id = new_id or (workspace.new_id if workspace else uuid7)
    budgets = budgets or (workspace.budgets if workspace else Budgets())
    pairs = _requests_with_webhooks(requests, workspace)
    hooks = _WebhookChooser(template_or_webhook, workspace)

    items: list[_PlainEvent | Outcome] = []
    total = len(pairs)
    report = _progress_reporter(progress, total)
    every = max(1, total // 100)
    fixed, choose, keep = hooks.fixed, hooks.for_request, items.append
    template = compile_template(hooks.template)  # the same for every request: compiled once
    try:
        with _gc_paused():
            for done, (request, webhook_id) in enumerate(pairs, 1):
                hook = fixed or choose(webhook_id)
                keep(_replay_one(hook, template, request, clock, new_id, budgets))
                if report is not None and (done % every == 0 or done == total):
                    report(done, total)
    finally:
        close = getattr(report, "close", None)
        if close is not None:
            close()

    names = dict(workspace._webhook_names()) if workspace else {}
    names.update(hooks.names())
    result = ReplayResult(items, names)
    if save and workspace is not None:
        workspace.record(_as_new_requests(result.outcomes, new_id))
    return result


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause cyclic garbage collection while a replay builds its results.

    A replay makes only acyclic dicts, lists and tuples, by the hundred thousand; every few
    hundred allocations Python would otherwise walk all of them again, and find nothing to free.
    At the end they join the oldest generation as they are (freeze, then unfreeze), rather than
    being walked once more by the first collection after the pause.
    """
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collecting:
            gc.freeze()
            gc.unfreeze()
            gc.enable()


def _replay_one(
    hook: Webhook,
    template: Template,
    request: HookRequest,
    clock: Clock,
    new_id: IdSource,
    budgets: Budgets,
) -> _PlainEvent | Outcome:
    """The receiver's pipeline, with a fast lane for the common plain event.

    When the rendered JSON is a plain event (`hooklab.core.pipeline.is_plain_event`, the check the
    receiver's pipeline makes too), pydantic is skipped, and the result is the same event
    `render_events` builds. Anything else, failures included, goes
    through `render_events` itself, so every error text stays the receiver's.
    """
    try:
        context = template_context(request)
        rendered = template.render(
            context.as_dict(), max_output=budgets.max_output, max_seconds=budgets.max_seconds
        )
        value = json.loads(rendered)
    except (BodyError, TemplateError, ValueError):
        value = None
    if type(value) is not dict or not is_plain_event(value, rendered, request):
        return render_events(hook, request, clock=clock, new_id=new_id, budgets=budgets)
    # The same order of clock and id readings as the pipeline, so seeded runs agree.
    occurred = _in_utc(clock())
    event_id = new_id()
    payload = value.get("payload")
    if payload is None:
        payload = {
            "method": context.method,
            "headers": context.headers.to_dict(),
            "body": context.body,
        }
    else:
        payload = dict(payload)  # pydantic's copy
    related = value.get("related")
    related = [*related, hook.related_resource()] if related else [hook.related_resource()]
    return _PlainEvent(
        request, hook, rendered, event_id, occurred, value["event"], value["resource"],
        related, payload,
    )  # fmt: skip


def _in_utc(moment: datetime) -> datetime:
    if type(moment) is not datetime:
        raise TypeError(f"the clock gave {moment!r}, not a datetime")
    if moment.tzinfo is timezone.utc:
        return moment  # what astimezone(timezone.utc) would return, but for the object
    if moment.tzinfo is None:
        return moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


class _WebhookChooser:
    """The webhook each request replays through: the one given, or its own with the new template."""

    def __init__(self, template_or_webhook: str | Webhook, workspace: Workspace | None) -> None:
        self.workspace = workspace
        self.fixed: Webhook | None = None
        self._by_id: dict[str | None, Webhook] = {}
        if isinstance(template_or_webhook, Webhook):
            self.fixed = template_or_webhook
            self.template = template_or_webhook.template
        elif isinstance(template_or_webhook, str):
            self.template = template_or_webhook
        else:
            raise TypeError("replay() needs a template string or a Webhook")

    def for_request(self, webhook_id: str | None) -> Webhook:
        if self.fixed is not None:
            return self.fixed
        hook = self._by_id.get(webhook_id)
        if hook is None:
            hook = self._by_id[webhook_id] = self._original(webhook_id)
        return hook

    def _original(self, webhook_id: str | None) -> Webhook:
        if webhook_id and self.workspace is not None:
            found = self.workspace.store.webhook_by("id", webhook_id)
            if found is not None:
                return replace(found, template=self.template)
        return draft_webhook(self.template, webhook_id or DRAFT_WEBHOOK_ID)

    def names(self) -> dict[str, str]:
        hooks = [self.fixed] if self.fixed else list(self._by_id.values())
        return {hook.id: hook.name for hook in hooks}


def draft_webhook(
    template: str, webhook_id: str = DRAFT_WEBHOOK_ID, name: str = "draft"
) -> Webhook:
    """A webhook that exists only to try a template: no slug, never stored."""
    return Webhook(webhook_id, name, template, "", _EPOCH, _EPOCH)


def _requests_with_webhooks(
    requests: Requests, workspace: Workspace | None
) -> list[tuple[HookRequest, str | None]]:
    if isinstance(requests, (HookRequest, StoredRequest)):
        requests = [requests]
    if hasattr(requests, "columns"):  # a requests DataFrame
        return _from_frame(requests, workspace)
    pairs: list[tuple[HookRequest, str | None]] = []
    for item in requests:
        if isinstance(item, StoredRequest):
            pairs.append((item.request, item.webhook_id))
        elif isinstance(item, HookRequest):
            pairs.append((item, None))
        else:
            raise TypeError(f"cannot replay {type(item).__name__}: give HookRequests or a frame")
    return pairs


def _from_frame(
    frame: pd.DataFrame, workspace: Workspace | None
) -> list[tuple[HookRequest, str | None]]:
    """Requests of a `Workspace.requests()` frame: the stored bytes when the workspace has them."""
    if "body" not in frame.columns or "headers" not in frame.columns:
        raise ValueError(
            "replay() needs a requests frame (Workspace.requests()), not an events frame"
        )
    ids = [str(i) for i in frame["id"]]
    if workspace is not None:
        stored = {record.request.id: record for record in workspace.captured(ids=ids)}
        if len(stored) == len(set(ids)):
            return [(stored[i].request, stored[i].webhook_id) for i in ids]
    pairs = []
    for row in frame.itertuples(index=False):
        request = HookRequest(
            method=row.method,
            path=row.path,
            query=row.query,
            headers=tuple(dict(row.headers).items()),
            body=str(row.body).encode(),
            received=row.received.to_pydatetime(),
            client=row.client,
            id=str(row.id),
        )
        pairs.append((request, row.webhook_id if isinstance(row.webhook_id, str) else None))
    return pairs


def _as_new_requests(outcomes: Iterable[Outcome], new_id: IdSource) -> list[Outcome]:
    """Copies of replayed outcomes under fresh request ids, so the originals stay as they were."""
    saved = []
    for outcome in outcomes:
        if outcome.request is not None:
            request = replace(outcome.request, id=str(new_id()))
            saved.append(replace(outcome, request=request))
    return saved


def _progress_reporter(progress: bool | Progress | None, total: int) -> Progress | None:
    if callable(progress):
        return progress
    if progress is False or (progress is None and total < PROGRESS_THRESHOLD):
        return None
    from hooklab.notebook.widgets import NotebookProgress

    return NotebookProgress.open(total, "replaying")
