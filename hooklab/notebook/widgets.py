"""ipywidgets: a template editor, a live event feed and a request inspector.

Widgets only hold state and react to callbacks; they never call `display()` from a callback.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import replace
from html import escape
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets

from hooklab.core.errors import USER_ERRORS
from hooklab.core.outcome import Outcome, Reason
from hooklab.core.pipeline import render_events
from hooklab.core.request import HookRequest, parse_body
from hooklab.core.webhooks import Webhook
from hooklab.notebook.reprs import findings_html, fuzz_html, pretty_json, table
from hooklab.store.contract import StoredRequest

if TYPE_CHECKING:
    from hooklab.history.fuzz import FuzzReport
    from hooklab.workspace import Workspace

_WIDE = widgets.Layout(width="100%")
_ERROR = "color:#b00"


def _request_label(request: HookRequest, status: int | None = None) -> str:
    when = request.received.strftime("%Y-%m-%d %H:%M:%S")
    shown = (
        f"{when} {request.method} {request.content_type or 'no body type'} {len(request.body)} B"
    )
    return f"{shown} -> {status}" if status is not None else shown


def _as_requests(
    items: Sequence[HookRequest | StoredRequest],
) -> list[tuple[HookRequest, int | None]]:
    return [
        (item.request, item.status) if isinstance(item, StoredRequest) else (item, None)
        for item in items
    ]


class TemplateEditor(widgets.VBox):  # type: ignore[misc]  # ipywidgets is untyped
    """Edit a template against captured requests and see the event, or the error and its line,
    as you type. The save button stores the template on the webhook (or creates it)."""

    def __init__(
        self,
        workspace: Workspace,
        webhook: str | Webhook | None = None,
        *,
        template: str | None = None,
        requests: Sequence[HookRequest | StoredRequest] | None = None,
        name: str | None = None,
    ) -> None:
        self.workspace = workspace
        self.webhook = workspace.get_webhook(webhook) if isinstance(webhook, str) else webhook
        self.name = name or (self.webhook.name if self.webhook else "draft")
        if requests is None:
            requests = workspace.captured(self.webhook.id)[-50:] if self.webhook else []
        self.requests = _as_requests(requests) or [(HookRequest.fake(method="POST"), None)]
        self.outcome: Outcome | None = None
        self.editor = widgets.Textarea(
            value=template
            if template is not None
            else (self.webhook.template if self.webhook else ""),
            continuous_update=True,
            layout=widgets.Layout(width="100%", height="14em"),
        )
        self.picker = widgets.Dropdown(
            options=[(_request_label(r, s), i) for i, (r, s) in enumerate(self.requests)],
            value=len(self.requests) - 1,
            description="request",
            layout=_WIDE,
        )
        self.result = widgets.HTML()
        self.findings = widgets.HTML()
        self.save_button = widgets.Button(description="Save", icon="save")
        self.status = widgets.HTML()
        self.fuzz_button = widgets.Button(description="fuzz", icon="bug")
        self.fuzz_findings = widgets.HTML()
        self.editor.observe(self._changed, names="value")
        self.picker.observe(self._changed, names="value")
        self.save_button.on_click(lambda _button: self.save())
        self.fuzz_button.on_click(lambda _button: self.fuzz())
        super().__init__(
            [self.editor, self.picker, self.result, self.findings,
             widgets.HBox([self.save_button, self.fuzz_button, self.status]), self.fuzz_findings]
        )  # fmt: skip
        self.render()

    @property
    def request(self) -> HookRequest:
        index: int = self.picker.value
        return self.requests[index][0]

    def _changed(self, _change: Any) -> None:
        self.render()

    def render(self) -> Outcome:
        """Render the chosen request through the text being edited; show and return the outcome."""
        from hooklab.history.lint import check_template
        from hooklab.history.replay import draft_webhook

        text = self.editor.value
        hook = (
            replace(self.webhook, template=text)
            if self.webhook
            else draft_webhook(text, name=self.name)
        )
        outcome = render_events(
            hook, self.request, clock=self.workspace.clock, new_id=self.workspace.new_id
        )
        self.outcome = outcome
        if outcome.failed:
            from hooklab.history.explain import failure_lines

            explained = "\n".join(failure_lines(text, outcome))
            self.result.value = f"<pre style='{_ERROR}'>{escape(explained)}</pre>"
        else:
            shown = [event.model_dump(mode="json") for event in outcome.events]
            self.result.value = (
                f"<pre>{escape(pretty_json(shown[0] if len(shown) == 1 else shown))}</pre>"
            )
        found = check_template(text)
        self.findings.value = findings_html(found) if found else ""
        return outcome

    def save(self) -> Webhook | None:
        """Store the template: update the webhook (its slug stays), or create it."""
        text = self.editor.value
        try:
            if self.webhook is not None:
                self.webhook = self.workspace.update_webhook(self.webhook.id, template=text)
            else:
                self.webhook = self.workspace.create_webhook(self.name, text)
        except USER_ERRORS as exc:  # a bug shows its traceback
            self.status.value = f"<span style='{_ERROR}'>not saved: {escape(str(exc))}</span>"
            return None
        self.status.value = f"saved {escape(self.webhook.name)}"
        return self.webhook

    def fuzz(self, max_examples: int = 200, seed: int = 0) -> FuzzReport:
        """Look for requests that break the text being edited, starting from the editor's
        requests; list each distinct error with the simplest request that causes it."""
        from hooklab.history.fuzz import fuzz

        report = fuzz(
            self.editor.value,
            examples=[request for request, _ in self.requests],
            max_examples=max_examples,
            seed=seed,
        )
        self.fuzz_findings.value = fuzz_html(report)
        return report

    def __repr__(self) -> str:
        outcome = self.outcome
        if outcome is None:
            state = "not rendered"
        elif outcome.failed:
            state = f"error: {outcome.error}"
        else:
            state = f"event {outcome.events[0].event!r}"
        where = f"request {self.picker.value + 1} of {len(self.requests)}"
        return f"TemplateEditor(webhook={self.name!r}, {where}, {state})"


class EventFeed(widgets.VBox):  # type: ignore[misc]  # ipywidgets is untyped
    """The latest events, newest first, following the workspace as requests arrive.

    >>> EventFeed(webhook="models")  # doctest: +SKIP

    It shows what any process stores on the same file (this kernel's receiver, another
    notebook's, `hooklab serve`): it looks every `interval` seconds while the kernel's loop
    runs (one look at the newest event number when nothing came), and at once when the
    receiver it was given stores a request. With neither a workspace nor a receiver, it follows
    the magics' workspace (and their receiver, when this kernel runs it). `close()` stops it.
    """

    def __init__(
        self,
        workspace: Workspace | None = None,
        receiver: Any = None,
        *,
        webhook: str | Webhook | None = None,
        limit: int = 20,
        interval: float = 0.5,
    ) -> None:
        if workspace is None and receiver is None:
            from hooklab.notebook.magics import active
            from hooklab.notebook.sending import local_receiver

            receiver = local_receiver()
            session = active()
            if receiver is None and session is not None:
                workspace = session.workspace  # the home another process serves, say
        if workspace is None and receiver is not None:
            workspace = receiver.workspace
        if isinstance(webhook, str) and workspace is not None:
            webhook = workspace.get_webhook(webhook)
        self.webhook_id = webhook.id if isinstance(webhook, Webhook) else webhook
        self.workspace = workspace
        self.limit = limit
        self.interval = interval
        self.rows: list[dict[str, Any]] = []
        self.received = 0
        self.failed = 0
        self.receiver = receiver
        self.header = widgets.HTML()
        self.table = widgets.HTML()
        super().__init__([self.header, self.table])
        self._seq = 0
        self._timer: asyncio.TimerHandle | None = None
        self.poll()
        if receiver is not None:
            receiver.add_listener(self.on_outcome)
        self._schedule()

    def poll(self) -> int:
        """Show what was stored since the last look; returns how many events came."""
        if self.workspace is None:
            self._refresh()
            return 0
        feed = self.workspace.feed(self._seq, webhook=self.webhook_id, limit=self.limit)
        self._seq, count, failed, rows = feed.position, feed.count, feed.failed, feed.rows
        self.received += count
        self.failed += failed
        for row in rows:
            entry = {
                "received": f"{row.received:%Y-%m-%d %H:%M:%S}",  # seconds: enough to scan
                "event": row.event,
                "resource": row.resource_id,
                "error": row.error,
            }
            self.rows.insert(0, entry)
        del self.rows[self.limit :]
        if count or not self.header.value:
            self._refresh()
        return count

    def on_outcome(self, outcome: Outcome) -> None:
        """Receiver callback, once a request is stored: look now rather than at the next tick."""
        if outcome.reason is not Reason.NOT_FOUND:
            self.poll()

    def _schedule(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop (plain Python): call poll() to look
            return
        self._timer = loop.call_later(self.interval, self._tick)

    def _tick(self) -> None:
        self._timer = None
        try:
            self.poll()
        except Exception as exc:  # the file went away or broke: say so and stop looking
            self.header.value = f"<b>event feed stopped</b>: {escape(str(exc))}"
            return
        self._schedule()

    def _refresh(self) -> None:
        self.header.value = f"<b>{self.received} events</b>, {self.failed} failed"
        self.table.value = table(
            ("received", "event", "resource", "error"), (list(r.values()) for r in self.rows)
        )

    @property
    def following(self) -> bool:
        """True while it looks for new events on its own."""
        return self._timer is not None

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self.receiver is not None:
            self.receiver.remove_listener(self.on_outcome)
            self.receiver = None
        super().close()

    def __repr__(self) -> str:
        latest = f", latest {self.rows[0]['event']!r}" if self.rows else ""
        return f"EventFeed({self.received} events, {self.failed} failed{latest})"


class RequestInspector(widgets.VBox):  # type: ignore[misc]  # ipywidgets is untyped
    """Pick a captured request and see it whole: headers, body, status, and what it rendered."""

    def __init__(
        self,
        workspace: Workspace,
        webhook: str | None = None,
        *,
        limit: int = 200,
    ) -> None:
        self.workspace = workspace
        self.webhook = webhook
        self.limit = limit
        self.records: list[StoredRequest] = []
        self.picker = widgets.Dropdown(description="request", layout=_WIDE)
        self.view = widgets.HTML()
        self.refresh_button = widgets.Button(description="Refresh", icon="refresh")
        self.picker.observe(lambda _change: self._show(), names="value")
        self.refresh_button.on_click(lambda _button: self.refresh())
        super().__init__([widgets.HBox([self.picker, self.refresh_button]), self.view])
        self.refresh()

    def refresh(self) -> None:
        """Reload the captured requests; the newest is selected."""
        self.records = self.workspace.captured(self.webhook)[-self.limit :]
        self.picker.options = [
            (_request_label(r.request, r.status), i) for i, r in enumerate(self.records)
        ]
        self.picker.value = len(self.records) - 1 if self.records else None
        self._show()

    @property
    def record(self) -> StoredRequest | None:
        index = self.picker.value
        return self.records[index] if index is not None and self.records else None

    def _show(self) -> None:
        record = self.record
        if record is None:
            self.view.value = "<i>no captured requests yet</i>"
            return
        request = record.request
        target = request.path + (f"?{request.query}" if request.query else "")
        outcome = f"<b>{record.status}</b>"
        if record.error:
            outcome += f" <span style='{_ERROR}'>{escape(record.error)}</span>"
        rendered = (
            f"<details><summary>rendered</summary><pre>{escape(record.rendered)}</pre></details>"
            if record.rendered
            else ""
        )
        self.view.value = (
            f"<p><code>{escape(request.method)} {escape(target)}</code> from "
            f"{escape(request.client)} at {escape(str(request.received))}: {outcome}</p>"
            f"{table(('header', 'value'), request.visible_headers.to_dict().items())}"
            f"<pre>{escape(_body_text(request))}</pre>{rendered}"
        )

    def __repr__(self) -> str:
        record = self.record
        shown = f", showing {record.request.method} {record.request.id}" if record else ""
        return f"RequestInspector({len(self.records)} requests{shown})"


def _body_text(request: HookRequest) -> str:
    """The body as people read it: indented when it is JSON, as text otherwise."""
    try:
        value = parse_body(request.content_type, request.body)
    except ValueError:
        return request.body_text()
    return value if isinstance(value, str) else pretty_json(value)
