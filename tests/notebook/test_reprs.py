"""The notebook's HTML views: what they show, and that text from senders and template authors
shows as text, never as markup (a `<script>` in a name, a payload or an error stays inert)."""

from __future__ import annotations

import json

from html_support import HOSTILE, HOSTILE_TEMPLATE, SCRIPT, hostile_post, shown_text

import hooklab
from hooklab.notebook.reprs import (
    diff_html,
    event_html,
    outcome_html,
    replay_html,
    table,
    webhook_html,
)
from hooklab.notebook.webhookview import WebhookView
from hooklab.workspace import Workspace


def as_json(text: str) -> str:
    """How the views' indented JSON writes a string."""
    return json.dumps(text, ensure_ascii=False)


def test_a_webhook_card_shows_its_name_url_description_template_and_findings_as_text(
    ws: Workspace,
) -> None:
    quoted = f'{{{{ body["{SCRIPT}"]|tojson }}}}'  # quoted tojson: a finding that quotes it
    template = HOSTILE_TEMPLATE.replace("{{ body.note|tojson }}", f'"{quoted}"')
    template = template.replace('"r.', f'{{# {HOSTILE} #}}"r.')
    hook = ws.create_webhook(HOSTILE, template, HOSTILE)
    text = shown_text(webhook_html(hook, f"http://127.0.0.1:8765/hooks/{HOSTILE}"))
    assert text.count(HOSTILE) == 4  # the name, the url, the description, the template
    assert template in text
    assert f"Webhook {HOSTILE} (enabled)" in text
    assert f"{quoted} is inside quotes" in text


def test_an_event_shows_its_name_resource_and_payload_as_text(ws: Workspace) -> None:
    hook = ws.create_webhook("hostile", HOSTILE_TEMPLATE)
    outcome = ws.receive(hook.slug, hostile_post())
    assert outcome.status == 204 and outcome.event is not None
    text = shown_text(event_html(outcome.event))
    assert text.startswith(f"{SCRIPT} on r.{SCRIPT} at ")
    assert f'"note": {as_json(HOSTILE)}' in text


def test_an_outcome_shows_its_status_and_error_as_text(ws: Workspace) -> None:
    hook = ws.create_webhook("hostile", HOSTILE_TEMPLATE)
    outcome = ws.receive(hook.slug, hostile_post(when=SCRIPT))
    assert outcome.error is not None and SCRIPT in outcome.error  # pydantic quotes the input
    text = shown_text(outcome_html(outcome))
    assert text.startswith(f"400 {outcome.error}")
    assert "prefect-cloud.webhook.failed" in text


def test_a_replay_shows_its_summary_failures_and_events_as_text() -> None:
    result = hooklab.replay([hostile_post(), hostile_post(when=SCRIPT)], HOSTILE_TEMPLATE)
    text = shown_text(replay_html(result))
    assert text.startswith("2 requests replayed")
    failures, events = text.split("Failures", 1)[1].split("Events", 1)
    assert f'got "{SCRIPT}"' in failures
    assert f"{SCRIPT}r.{SCRIPT}" in events  # the event and resource.id cells


def test_a_diff_shows_the_fields_old_and_new_values_as_text() -> None:
    requests = [hostile_post()]
    old = hooklab.replay(requests, HOSTILE_TEMPLATE.replace("body.note|tojson", '"calm"|tojson'))
    new = hooklab.replay(requests, HOSTILE_TEMPLATE)
    text = shown_text(diff_html(hooklab.diff(old, new)))
    assert f"changedpayload.notecalm{HOSTILE}" in text


def test_a_table_escapes_its_headers_and_cells_and_shows_json_cells_as_json() -> None:
    html = table((HOSTILE, "value"), [(HOSTILE, {"k": HOSTILE}), (None, float("nan"))])
    text = shown_text(html)
    assert text == f"{HOSTILE}value{HOSTILE}{json.dumps({'k': HOSTILE}, ensure_ascii=False)}"
    assert html.count("<tr>") == 3  # the header row and two rows; gaps show empty


def test_the_webhook_cell_view_shows_the_name_url_and_curl_command_as_text(ws: Workspace) -> None:
    header = "{{ headers['X-" + SCRIPT + "'] }}"
    field = '{{ body["' + SCRIPT + '"]|tojson }}'
    resource = '{"prefect.resource.id": "' + header + '"}'
    template = '{"event": "e", "resource": ' + resource + ', "payload": {"v": ' + field + "}}"
    hook = ws.create_webhook(HOSTILE, template)
    url = f"http://127.0.0.1:8765/hooks/{HOSTILE}"
    text = shown_text(WebhookView(hook, "created", url)._repr_html_())
    assert text.startswith(f"webhook {HOSTILE} created")
    # The curl command sends the header and the body field the template reads.
    assert f"-H 'X-{SCRIPT}: example' -d '{SCRIPT}=example'" in text
    assert f"await hooklab.send({url!r}, ...)" in text


def test_the_webhook_cell_shows_its_check_first_each_finding_boxed_by_level(
    ws: Workspace,
) -> None:
    template = (
        '{"event": "shop.order.{{ body.order_id }}",\n'
        ' "resource": {"prefect.resource.id": "x"}, "payload": {{ body }}}'
    )
    hook = ws.create_webhook("shop", template)
    html = WebhookView(hook, "created", "http://127.0.0.1:8765/hooks/s")._repr_html_()
    text = shown_text(html)
    warning, note = text.index("warning: line 2:"), text.index("note: line 1:")
    assert warning < note < text.index("curl -X POST")  # above the URL, problems first
    assert text.count("warning: line 2:") == 1  # shown once, not again in the card
    for level, colour in (("warning", "#fff4e0"), ("note", "#eef4fb")):
        box = html[: html.index(f"{level}: line")].rsplit("<div", 1)[1]
        assert f"background: {colour}" in box
    assert "no common mistakes found" not in text
    clean = ws.create_webhook("clean", '{"event": "e", "resource": {"prefect.resource.id": "x"}}')
    shown = shown_text(WebhookView(clean, "created", None)._repr_html_())
    assert "compatible with Prefect Cloud; no common mistakes found" in shown
