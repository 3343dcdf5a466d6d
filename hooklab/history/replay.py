"""Replay captured requests through a template, exactly as the receiver would have answered them."""

from __future__ import annotations

import functools
import gc
import operator
import time
from collections.abc import Callable, Generator, Iterable, Iterator
from contextlib import closing, contextmanager
from dataclasses import replace
from datetime import datetime, timezone
from functools import cached_property
from typing import TYPE_CHECKING

from hooklab.core.events import uuid7
from hooklab.core.outcome import IdSource, Outcome
from hooklab.core.pipeline import Budgets, Pipeline, PlainEvent
from hooklab.core.request import HookRequest
from hooklab.core.templates import compile_template
from hooklab.core.times import Clock, utcnow
from hooklab.core.webhooks import Webhook
from hooklab.history.cores import cpu_mark
from hooklab.history.diffs import Diff, diff
from hooklab.history.parallel import PARALLEL_SAMPLE_SECONDS, may_pool, workers_for
from hooklab.history.sources import Requests, requests_with_webhooks

if TYPE_CHECKING:
    import pandas as pd

    from hooklab.store.frames import EventColumns
    from hooklab.workspace import Workspace

__all__ = [
    "Diff",
    "Progress",
    "ReplayResult",
    "diff",
    "draft_webhook",
    "replay",
]

# Told how far a replay has got: `progress(done, total)`. One with a `close()` method (a
# progress bar) is closed when the replay ends, whether it finished or failed.
Progress = Callable[[int, int], None]

DRAFT_WEBHOOK_ID = "00000000-0000-0000-0000-000000000000"
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


class ReplayResult:
    """What a replay produced: `.events`, `.failures` (DataFrames) and `.outcomes`.

    `.frame` holds both, one row per event, in request order, with the columns of
    `Workspace.events()`. Plain events stay `PlainEvent`s until `.outcomes` is read: the frame
    takes their values as they are.
    """

    def __init__(self, items: list[Outcome | PlainEvent], webhook_names: dict[str, str]) -> None:
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
        from hooklab.store.frames import events_from_columns

        with _gc_paused():
            return events_from_columns(_columns(self._items), self._webhook_names)

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


def _columns(items: list[Outcome | PlainEvent]) -> EventColumns:
    """The frame's columns: a plain event's values as they are, any other outcome's events."""
    from hooklab.store.frames import EventColumns

    if all(type(item) is PlainEvent for item in items):
        return _plain_columns(items)  # type: ignore[arg-type]
    columns = EventColumns()
    for item in items:
        if isinstance(item, PlainEvent):
            item = item.outcome()
        request_id = item.request.id if item.request else None
        for event in item.events:
            columns.append(
                str(event.id), event.occurred, event.received, event.event,
                event.resource.root, [r.root for r in event.related], event.payload,
                item.webhook_id, request_id, item.failed, item.error,
            )  # fmt: skip
    return columns


_REQUEST = operator.itemgetter(0)
_ID = operator.attrgetter("id")
_OCCURRED = operator.attrgetter("occurred")
_EVENT = operator.attrgetter("event")
_RESOURCE = operator.attrgetter("resource")
_RELATED = operator.attrgetter("related")
_PAYLOAD = operator.attrgetter("payload")
_RECEIVED = operator.attrgetter("request.received")
_REQUEST_ID = operator.attrgetter("request.id")
_WEBHOOK_ID = operator.attrgetter("pipeline.webhook.id")


def _plain_columns(items: list[PlainEvent]) -> EventColumns:
    """Columns of plain events, one C-level pass per column."""
    from hooklab.store.frames import EventColumns

    return EventColumns(
        id=list(map(str, map(_ID, items))),
        occurred=list(map(_OCCURRED, items)),
        received=list(map(_RECEIVED, items)),
        event=list(map(_EVENT, items)),
        resource=list(map(_RESOURCE, items)),
        related=list(map(_RELATED, items)),
        payload=list(map(_PAYLOAD, items)),
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
    progress: Progress | None = None,
    processes: int | None = None,
) -> ReplayResult:
    """Run captured requests through a template (or a webhook's), exactly as the receiver would.

    >>> result = replay([HookRequest.fake(method="POST", form={"model": "m1"})],
    ...                 '{"event": "e", "resource": {"prefect.resource.id": "{{ body.model }}"}}')
    >>> result.events["resource.id"].tolist()
    ['m1']

    The history is left alone unless `save=True` (then the results are stored as new requests
    in `workspace`). A template string keeps each captured request's original webhook (its id and
    name in `related`) when `workspace` knows it. `progress`, a `Progress`, is told how far the
    replay has got, about a hundred times (in a notebook, `hooklab.notebook.progress.ProgressBar()`
    shows a bar); without it, a replay shows nothing. To send a replay's events to Prefect,
    `hooklab.prefect.forward_replay(result, url)`.

    A large replay renders on the idle cores (worker processes, each compiling the template
    once), when its clock and ids are the defaults and it is not saved; the result is the same,
    in the same order. `processes=1` keeps it in this process; `processes=2` (or more) asks for
    workers whatever the replay's size. Workers wait for the next replay for a few minutes
    (`hooklab.history.parallel.end_idle_workers()` ends them at once).

    Raises `TemplateError` at once, with its line, for a template that does not compile.
    """
    if save and workspace is None:
        raise ValueError("replay(..., save=True) needs the workspace to save into")
    clock = clock or (workspace.clock if workspace else utcnow)
    new_id = new_id or (workspace.new_id if workspace else uuid7)
    budgets = budgets or (workspace.budgets if workspace else Budgets())
    pairs = requests_with_webhooks(requests, workspace)
    pipelines = _Pipelines(template_or_webhook, workspace, clock, new_id, budgets)
    compile_template(pipelines.template)  # a broken template fails here, not once per request

    total = len(pairs)
    every = max(1, total // 100)
    chunks = [pairs[start : start + every] for start in range(0, total, every)]
    owners = {webhook_id for _, webhook_id in pairs}
    if pipelines.fixed is None and len(owners) == 1:  # one webhook's requests (or none's)
        pipelines.fixed = pipelines.for_request(next(iter(owners)))
    requests_only = [request for request, _ in pairs]
    drafts: Generator[list[Outcome | PlainEvent], None, None]
    if processes is None and may_pool(requests_only, clock, new_id, save=save):
        drafts = _timed_then_pooled(chunks, pipelines, budgets)
    elif processes is not None and processes > 1:
        if clock is not utcnow or new_id is not uuid7 or save:
            raise ValueError("replay(processes=...) takes the default clock and ids, unsaved")
        drafts = _pooled(chunks, pipelines, budgets, processes)
    else:
        drafts = _here(chunks, pipelines)
    del requests_only
    items: list[Outcome | PlainEvent] = []
    try:
        with _gc_paused(), closing(drafts):
            for found in drafts:
                items.extend(found)
                if progress is not None:
                    progress(len(items), total)
    finally:
        close = getattr(progress, "close", None)
        if close is not None:
            close()

    names = dict(workspace._webhook_names()) if workspace else {}
    names.update(pipelines.names())
    result = ReplayResult(items, names)
    if save and workspace is not None:
        workspace.record(_as_new_requests(result.outcomes, new_id))
    return result


def _here(
    chunks: list[list[tuple[HookRequest, str | None]]], pipelines: _Pipelines
) -> Generator[list[Outcome | PlainEvent], None, None]:
    """Each chunk's drafts, rendered in this process."""
    fixed, choose = pipelines.fixed, pipelines.for_request
    for chunk in chunks:
        if fixed is not None:
            yield list(fixed.draft_many(map(_REQUEST, chunk)))
        else:
            yield [choose(webhook_id).draft(request) for request, webhook_id in chunk]


def _timed_then_pooled(
    chunks: list[list[tuple[HookRequest, str | None]]], pipelines: _Pipelines, budgets: Budgets
) -> Generator[list[Outcome | PlainEvent], None, None]:
    """Each chunk's drafts: the first rendered here, timed, and the rest in worker processes
    if that time says they would take long enough here to win back the workers' start."""
    started, done, mark = time.perf_counter(), 0, cpu_mark()
    for done, drafts in enumerate(_here(chunks, pipelines), 1):
        yield drafts
        spent = time.perf_counter() - started
        if spent >= PARALLEL_SAMPLE_SECONDS or done == len(chunks):
            break
    left = chunks[done:]
    sampled = sum(map(len, chunks[:done]))
    workers = workers_for(spent / done * len(left), spent / sampled, mark) if left else 0
    if workers:
        yield from _pooled(left, pipelines, budgets, workers)
    else:
        yield from _here(left, pipelines)


def _pooled(
    chunks: list[list[tuple[HookRequest, str | None]]],
    pipelines: _Pipelines,
    budgets: Budgets,
    workers: int,
) -> Generator[list[Outcome | PlainEvent], None, None]:
    """Each chunk's drafts, rendered by worker processes, in order."""
    from hooklab.history.parallel import ReplayPool

    if pipelines.fixed is not None:
        by_key: dict[str | None, Pipeline] = {None: pipelines.fixed}
    else:
        owners = dict.fromkeys(webhook_id for chunk in chunks for _, webhook_id in chunk)
        by_key = {webhook_id: pipelines.for_request(webhook_id) for webhook_id in owners}
    webhooks = {key: pipeline.webhook for key, pipeline in by_key.items()}
    with ReplayPool(webhooks, budgets, workers, fixed=pipelines.fixed is not None) as pool:
        yield from pool.drafts(chunks, by_key)


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause cyclic garbage collection while a replay builds its results.

    A replay makes only acyclic objects, by the hundred thousand; every few hundred allocations
    Python would otherwise walk all of them again, and find nothing to free. At the end they
    join the oldest generation as they are (freeze, then unfreeze), rather than being walked
    once more by the first collection after the pause.
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


class _Pipelines:
    """The pipeline each request replays through: the webhook given, or the request's own
    webhook with the new template; each compiled once."""

    def __init__(
        self,
        template_or_webhook: str | Webhook,
        workspace: Workspace | None,
        clock: Clock,
        new_id: IdSource,
        budgets: Budgets,
    ) -> None:
        self.workspace = workspace
        self._pipeline = functools.partial(Pipeline, clock=clock, new_id=new_id, budgets=budgets)
        self.fixed: Pipeline | None = None
        self._by_id: dict[str | None, Pipeline] = {}
        if isinstance(template_or_webhook, Webhook):
            self.fixed = self._pipeline(template_or_webhook)
            self.template = template_or_webhook.template
        elif isinstance(template_or_webhook, str):
            self.template = template_or_webhook
        else:
            raise TypeError("replay() needs a template string or a Webhook")

    def for_request(self, webhook_id: str | None) -> Pipeline:
        pipeline = self._by_id.get(webhook_id)
        if pipeline is None:
            pipeline = self._by_id[webhook_id] = self._pipeline(self._original(webhook_id))
        return pipeline

    def _original(self, webhook_id: str | None) -> Webhook:
        if webhook_id and self.workspace is not None:
            found = self.workspace.webhook_by_id(webhook_id)
            if found is not None:
                return replace(found, template=self.template)
        return draft_webhook(self.template, webhook_id or DRAFT_WEBHOOK_ID)

    def names(self) -> dict[str, str]:
        pipelines = [self.fixed] if self.fixed else list(self._by_id.values())
        return {p.webhook.id: p.webhook.name for p in pipelines}


def draft_webhook(
    template: str, webhook_id: str = DRAFT_WEBHOOK_ID, name: str = "draft"
) -> Webhook:
    """A webhook that exists only to try a template: no slug, never stored."""
    return Webhook(webhook_id, name, template, "", _EPOCH, _EPOCH)


def _as_new_requests(outcomes: Iterable[Outcome], new_id: IdSource) -> list[Outcome]:
    """Copies of replayed outcomes under fresh request ids, so the originals stay as they were."""
    saved = []
    for outcome in outcomes:
        if outcome.request is not None:
            request = replace(outcome.request, id=str(new_id()))
            saved.append(replace(outcome, request=request))
    return saved
