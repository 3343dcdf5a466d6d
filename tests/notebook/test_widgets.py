"""Widgets hold state and react: the editor re-renders as the text changes, the feed follows
the receiver's callbacks, the inspector shows what was captured."""

from __future__ import annotations

import asyncio
import json
from html import escape

from html_support import HOSTILE, HOSTILE_TEMPLATE, SCRIPT, hostile_post, shown_text

from hooklab.core.request import HookRequest
from hooklab.notebook.progress import NotebookProgress
from hooklab.notebook.sending import send
from hooklab.notebook.widgets import EventFeed, RequestInspector, TemplateEditor
from hooklab.server import Receiver
from hooklab.workspace import Workspace

SEED = """{
  "event": "model-update",
  "resource": {
    "prefect.resource.id": "product.models.{{ body.model }}",
    "prefect.resource.name": "{{ body.friendly_name }}"
  }
}"""


def post(model: str, name: str = "Name") -> HookRequest:
    return HookRequest.fake(method="POST", form={"model": model, "friendly_name": name})


def test_editor_renders_the_latest_request_and_follows_the_text(ws: Workspace) -> None:
    hook = ws.create_webhook("models", SEED)
    ws.receive(hook.slug, post("first"))
    ws.receive(hook.slug, post("second"))
    editor = TemplateEditor(ws, "models")
    assert "product.models.second" in editor.result.value
    assert repr(editor) == "TemplateEditor(webhook='models', request 2 of 2, event 'model-update')"

    editor.editor.value = SEED.replace("model-update", "model-renamed")
    assert "model-renamed" in editor.result.value

    editor.picker.value = 0
    assert "product.models.first" in editor.result.value


def test_editor_shows_the_error_and_its_template_line(ws: Workspace) -> None:
    hook = ws.create_webhook("models", SEED)
    ws.receive(hook.slug, post("m"))
    editor = TemplateEditor(ws, hook)
    editor.editor.value = SEED.replace("{{ body.model }}", "{{ body.model | nosuchfilter }}")
    assert "line 4" in editor.result.value and "nosuchfilter" in editor.result.value
    assert "4 |" in editor.result.value  # the template line itself, quoted
    assert repr(editor).startswith("TemplateEditor(webhook='models', request 1 of 1, error: line 4")


def test_editor_says_what_the_receiver_says_of_a_lone_surrogate(ws: Workspace) -> None:
    hook = ws.create_webhook("passthrough", "{{ body|tojson }}")
    body = '{"event": "e", "resource": {"prefect.resource.id": "r"}, "payload": {"a": "\\ud800"}}'
    headers = {"Content-Type": "application/json"}
    ws.receive(hook.slug, HookRequest.fake(method="POST", headers=headers, body=body))
    (stored,) = ws.captured()
    error = 'payload["a"]: text that is not valid Unicode (a lone surrogate, "\\ud800")'
    assert stored.status == 400 and error in repr(TemplateEditor(ws, hook))
    assert escape(error) in TemplateEditor(ws, hook).result.value


def test_editor_save_keeps_the_slug_and_refuses_a_broken_template(ws: Workspace) -> None:
    hook = ws.create_webhook("models", SEED)
    editor = TemplateEditor(ws, hook)
    editor.editor.value = SEED.replace("model-update", "model-saved")
    editor.save_button.click()
    saved = ws.get_webhook("models")
    assert "model-saved" in saved.template and saved.slug == hook.slug
    assert "saved models" in editor.status.value

    editor.editor.value = "{{ oops"
    editor.save_button.click()
    assert "not saved" in editor.status.value
    assert "model-saved" in ws.get_webhook("models").template


def test_editor_without_a_webhook_creates_one_on_save(ws: Workspace) -> None:
    editor = TemplateEditor(ws, template=SEED, name="fresh", requests=[post("x")])
    assert "product.models.x" in editor.result.value
    editor.save()
    assert ws.get_webhook("fresh").template == SEED


def test_editor_lists_lint_findings(ws: Workspace) -> None:
    editor = TemplateEditor(ws, template=SEED.replace("{{ body.model }}", "{{ query.m }}"))
    assert "hooklab extension" in editor.findings.value


def test_feed_follows_a_real_receiver_as_requests_arrive(ws: Workspace) -> None:
    hook = ws.create_webhook("models", SEED)
    other = ws.create_webhook("other", SEED)
    ws.receive(hook.slug, post("old"))

    async def scenario() -> tuple[EventFeed, Receiver]:
        receiver = Receiver(ws, admin_key="k").start()
        feed = EventFeed(ws, receiver, webhook="models")
        assert feed.received == 1 and feed.rows[0]["resource"] == "product.models.old"
        await send(receiver.webhook_url(hook), form={"model": "new", "friendly_name": "N"})
        await send(receiver.webhook_url(other), form={"model": "elsewhere"})
        await send(receiver.webhook_url(hook), json={"model": 1})
        await send(receiver.webhook_url("no-such-slug"), form={"model": "lost"})
        feed.close()
        await send(receiver.webhook_url(hook), form={"model": "after-close"})
        await receiver.shutdown()
        return feed, receiver

    feed, _receiver = asyncio.run(asyncio.wait_for(scenario(), 60))
    assert feed.received == 3 and feed.failed == 0
    assert feed.rows[0]["resource"] == "product.models.1"
    assert "product.models.new" in feed.table.value
    assert "elsewhere" not in feed.table.value and "after-close" not in feed.table.value
    assert repr(feed) == "EventFeed(3 events, 0 failed, latest 'model-update')"


def test_feed_counts_failures(ws: Workspace) -> None:
    hook = ws.create_webhook("models", SEED)
    feed = EventFeed(ws)
    bad = HookRequest.fake(method="POST", headers={"Content-Type": "application/json"}, body="{")
    ws.receive(hook.slug, bad)
    assert feed.poll() == 1
    assert (feed.received, feed.failed) == (1, 1)
    assert "Invalid JSON body" in feed.table.value


def test_inspector_shows_headers_body_and_status_without_authorization(ws: Workspace) -> None:
    hook = ws.create_webhook("models", SEED)
    ws.receive(hook.slug, post("a"))
    secret = HookRequest.fake(
        method="POST",
        headers={"Authorization": "Bearer sekrit", "Content-Type": "application/json"},
        body='{"model": "b"}',
    )
    ws.receive(hook.slug, secret)
    inspector = RequestInspector(ws, "models")
    assert len(inspector.records) == 2
    assert "&quot;model&quot;: &quot;b&quot;" in inspector.view.value
    assert "204" in inspector.view.value and "sekrit" not in inspector.view.value
    inspector.picker.value = 0
    assert "&quot;model&quot;: &quot;a&quot;" in inspector.view.value
    assert repr(inspector).startswith("RequestInspector(2 requests, showing POST")


def test_inspector_of_an_empty_workspace(ws: Workspace) -> None:
    inspector = RequestInspector(ws)
    assert "no captured requests" in inspector.view.value
    assert repr(inspector) == "RequestInspector(0 requests)"


def test_progress_is_silent_outside_a_kernel() -> None:
    assert NotebookProgress.open(10) is None
    progress = NotebookProgress(10, "replaying")
    progress(4, 10)
    assert progress.bar.value == 4 and repr(progress) == "NotebookProgress(4/10)"
    progress.close()


# What senders and template authors write shows as text in every widget, never as markup.


def test_editor_shows_events_errors_template_lines_and_names_as_text(ws: Workspace) -> None:
    editor = TemplateEditor(ws, template=HOSTILE_TEMPLATE, name=HOSTILE, requests=[hostile_post()])
    shown = shown_text(editor.result.value)
    assert f'"event": {json.dumps(SCRIPT)}' in shown
    assert f'"note": {json.dumps(HOSTILE)}' in shown

    broken = HOSTILE_TEMPLATE.replace('"r.', f'"r.{{{{ body.name.nope() }}}}{HOSTILE}')
    editor.editor.value = broken
    shown = shown_text(editor.result.value)
    assert "has no attribute 'nope'" in shown
    assert (
        f'3 |   "resource": {{"prefect.resource.id": "r.{{{{ body.name.nope() }}}}{HOSTILE}'
        in shown
    )
    quoted = f'{{{{ body["{SCRIPT}"]|tojson }}}}'
    editor.editor.value = HOSTILE_TEMPLATE.replace("{{ body.note|tojson }}", f'"{quoted}"')
    assert f"{quoted} is inside quotes" in shown_text(editor.findings.value)

    editor.editor.value = HOSTILE_TEMPLATE
    assert editor.save() is not None
    assert shown_text(editor.status.value) == f"saved {HOSTILE}"
    editor.editor.value = "{{ " + SCRIPT
    assert editor.save() is None
    assert (
        shown_text(editor.status.value)
        == "not saved: line 1: Template syntax error: unexpected '<'"
    )


def test_feed_shows_events_resources_and_errors_as_text(ws: Workspace) -> None:
    hook = ws.create_webhook("hostile", HOSTILE_TEMPLATE)
    ws.receive(hook.slug, hostile_post())
    ws.receive(hook.slug, hostile_post(when=SCRIPT))
    feed = EventFeed(ws)
    assert (feed.received, feed.failed) == (2, 1)
    shown = shown_text(feed.table.value)
    assert f"{SCRIPT}r.{SCRIPT}" in shown  # the event and resource cells
    assert f'got "{SCRIPT}"' in shown  # the failure's error, quoting the input


def test_inspector_shows_path_client_headers_body_error_and_output_as_text(ws: Workspace) -> None:
    hook = ws.create_webhook("hostile", HOSTILE_TEMPLATE)
    ws.receive(hook.slug, hostile_post(when=SCRIPT))
    inspector = RequestInspector(ws, "hostile")
    shown = shown_text(inspector.view.value)
    assert shown.startswith(f"POST /hooks/{SCRIPT}?q={SCRIPT} from {SCRIPT} at ")
    assert f"x-note{HOSTILE}" in shown.lower()
    assert f'"note": {json.dumps(HOSTILE)}' in shown  # the body
    assert f'got "{SCRIPT}"' in shown  # the error
    assert f'"prefect.resource.id": "r.{SCRIPT}"' in shown  # what the template rendered


def test_editor_fuzz_button_lists_the_breaking_requests(ws: Workspace) -> None:
    hook = ws.create_webhook("models", SEED)
    ws.receive(hook.slug, post("m"))
    editor = TemplateEditor(ws, hook)
    editor.fuzz_button.click()
    shown = editor.fuzz_findings.value
    assert "1 cause of failure, on 2 template lines" in shown
    assert "Request text written inside quotes as it is" in shown
    assert "product.models.{{ body.model }}" in shown  # the template line
    assert escape('{{ ("product.models." ~ body.model)|tojson }}') in shown  # its fix
    editor.editor.value = SEED.replace('"{{ body.model }}', "{{ body.model | tojson }}")
    editor.editor.value = """{
  "event": "model-update",
  "resource": {"prefect.resource.id": {{ ("product.models." ~ body.model) | tojson }}}
}"""
    assert editor.fuzz(max_examples=50).passed
    assert "No failing request found" in shown_text(editor.fuzz_findings.value)
