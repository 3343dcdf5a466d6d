"""The Workspace facade: webhooks (SPEC 1), receiving (SPEC 2), accounts, enforcement (SPEC 8)."""

from __future__ import annotations

import itertools
import json
import random
from datetime import datetime, timedelta, timezone
from pathlib import Path
from uuid import UUID

import pytest

import hooklab
from hooklab import HookRequest
from hooklab.core.errors import InvalidInput
from hooklab.core.outcome import Reason
from hooklab.workspace import (
    EnforcementError,
    HistoryFilter,
    ServiceAccountNotFound,
    default_home,
)

TEMPLATE = """{
  "event": "model.refreshed",
  "resource": {"prefect.resource.id": "product.models.{{ body.model }}"}
}"""

START = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)


def post(model: str = "m1", **headers: str) -> HookRequest:
    return HookRequest.fake(method="POST", form={"model": model}, headers=headers)


def test_create_then_get_by_id_name_or_slug(workspace: hooklab.Workspace) -> None:
    hook = workspace.create_webhook("models", TEMPLATE, description="from cron")
    assert (hook.name, hook.description, hook.enabled) == ("models", "from cron", True)
    assert UUID(hook.id)
    assert len(hook.slug) == 22
    assert workspace.get_webhook(hook.id) == workspace.get_webhook("models") == hook
    assert workspace.get_webhook(hook.slug) == hook
    assert workspace.list_webhooks() == [hook]


def test_unknown_webhook_raises_prefects_not_found_text(workspace: hooklab.Workspace) -> None:
    with pytest.raises(hooklab.WebhookNotFound) as caught:
        workspace.get_webhook("nope")
    assert str(caught.value) == "Webhook with id 'nope' not found."


def test_a_syntax_error_is_refused_on_create_with_its_line(workspace: hooklab.Workspace) -> None:
    with pytest.raises(hooklab.TemplateError) as caught:
        workspace.create_webhook("broken", '{\n  "event": "x",\n  "n": "{{ body.model }"\n}')
    assert caught.value.lineno == 3
    assert str(caught.value).startswith("line 3: Template syntax error: unexpected '}'")
    assert workspace.list_webhooks() == []


def test_a_syntax_error_is_refused_on_update_and_the_webhook_keeps_its_template(
    workspace: hooklab.Workspace,
) -> None:
    hook = workspace.create_webhook("models", TEMPLATE)
    with pytest.raises(hooklab.TemplateError, match="line 2"):
        workspace.update_webhook(hook.id, template="{}\n{% for x in y %}")
    assert workspace.get_webhook(hook.id).template == TEMPLATE


def test_runaway_loops_are_refused_when_saved(workspace: hooklab.Workspace) -> None:
    deep = "{% for a in x %}{% for b in a %}{% for c in b %}{% endfor %}{% endfor %}{% endfor %}"
    many = "".join("{% for i in x %}{% endfor %}" for _ in range(11))
    with pytest.raises(hooklab.TemplateError, match="nested for loops at a depth of 3"):
        workspace.create_webhook("deep", deep)
    hook = workspace.create_webhook("ok", TEMPLATE)
    with pytest.raises(hooklab.TemplateError, match="Contains 11 for loops"):
        workspace.update_webhook(hook.id, template=many)
    assert [h.name for h in workspace.list_webhooks()] == ["ok"]


def test_update_changes_only_what_is_given(workspace: hooklab.Workspace) -> None:
    hook = workspace.create_webhook("models", TEMPLATE, description="d")
    changed = workspace.update_webhook(hook.id, name="renamed", template="{{ body|tojson }}")
    assert (changed.name, changed.description, changed.template) == (
        "renamed", "d", "{{ body|tojson }}",
    )  # fmt: skip
    assert (changed.slug, changed.created) == (hook.slug, hook.created)
    assert changed.updated >= hook.updated
    assert workspace.get_webhook(hook.id) == changed


def test_names_must_not_be_empty(workspace: hooklab.Workspace) -> None:
    with pytest.raises(ValueError, match="non-empty name"):
        workspace.create_webhook("  ", TEMPLATE)


def test_receive_produces_the_event_and_stores_it(workspace: hooklab.Workspace) -> None:
    hook = workspace.create_webhook("models", TEMPLATE)
    outcome = workspace.receive(hook.slug, post("m1"))
    assert outcome.status == 204
    assert outcome.events[0].model_dump()["resource"] == {
        "prefect.resource.id": "product.models.m1"
    }
    frame = workspace.events()
    assert len(frame) == 1
    assert frame.loc[0, "resource.id"] == "product.models.m1"
    assert frame.loc[0, "webhook_name"] == "models"
    assert frame.loc[0, "request_id"] == outcome.request.id  # type: ignore[union-attr]
    assert not frame.loc[0, "failed"]


def test_events_frame_has_one_row_per_event_failures_included(
    workspace: hooklab.Workspace,
) -> None:
    hook = workspace.create_webhook("models", TEMPLATE)
    workspace.receive(hook.slug, post("m1"))
    broken = HookRequest.fake(
        method="POST", body='{"model": }', headers={"Content-Type": "application/json"}
    )
    workspace.receive(hook.slug, broken)
    workspace.receive(hook.slug, post("m2"))
    frame = workspace.events()
    assert frame["event"].tolist() == [
        "model.refreshed", "prefect-cloud.webhook.failed", "model.refreshed",
    ]  # fmt: skip
    assert frame["failed"].tolist() == [False, True, False]
    assert (
        frame.loc[1, "error"] == "Invalid JSON body: Expecting value at line 1 column 11 (char 10)"
    )
    assert workspace.events(failed=True)["request_id"].tolist() == [frame.loc[1, "request_id"]]
    assert len(workspace.requests()) == 3


def test_unknown_slug_is_a_404_and_nothing_is_stored(workspace: hooklab.Workspace) -> None:
    outcome = workspace.receive("no-such-slug", post())
    assert (outcome.status, outcome.events, outcome.reason) == (404, (), Reason.NOT_FOUND)
    assert workspace.store.count("requests") == 0


def test_rotate_gives_a_new_slug_and_the_old_one_answers_404(
    workspace: hooklab.Workspace,
) -> None:
    hook = workspace.create_webhook("models", TEMPLATE)
    rotated = workspace.rotate_webhook(hook.id)
    assert rotated.slug != hook.slug and len(rotated.slug) == 22
    assert (rotated.id, rotated.name, rotated.template) == (hook.id, hook.name, hook.template)
    assert workspace.receive(hook.slug, post()).status == 404
    assert workspace.receive(rotated.slug, post()).status == 204


def test_toggle_disables_and_a_disabled_webhook_accepts_nothing(
    workspace: hooklab.Workspace,
) -> None:
    hook = workspace.create_webhook("models", TEMPLATE)
    assert workspace.toggle_webhook(hook.id).enabled is False
    refused = workspace.receive(hook.slug, post())
    assert (refused.status, refused.error) == (400, "Webhook is disabled")
    assert refused.reason is Reason.DISABLED
    assert refused.events[0].event == "prefect-cloud.webhook.failed"
    assert workspace.toggle_webhook(hook.id).enabled is True
    assert workspace.receive(hook.slug, post()).status == 204


def test_deleting_a_webhook_keeps_its_history_marked_with_its_id(
    workspace: hooklab.Workspace,
) -> None:
    hook = workspace.create_webhook("models", TEMPLATE)
    workspace.receive(hook.slug, post("m1"))
    workspace.delete_webhook(hook.id)
    assert workspace.list_webhooks() == []
    assert workspace.receive(hook.slug, post()).status == 404
    history = workspace.events(hook.id)
    assert history["webhook_id"].tolist() == [hook.id]
    assert history["resource.id"].tolist() == ["product.models.m1"]
    assert workspace.requests(hook.id)["webhook_id"].tolist() == [hook.id]


@pytest.mark.parametrize(
    "request_",
    [
        HookRequest.fake(method="POST", body="{oops", headers={"Content-Type": "application/json"}),
        HookRequest.fake(
            method="POST", body=b"\xff\xfe", headers={"Content-Type": "application/json"}
        ),
        HookRequest.fake(method="POST", json=[1, 2, 3]),
        HookRequest.fake(method="DELETE"),
        HookRequest.fake(method="POST", json={"model": "x" * 2_000_000}),
    ],
    ids=["malformed-json", "invalid-utf8", "array", "no-body", "oversize"],
)
def test_receive_never_raises_for_bad_input(
    workspace: hooklab.Workspace, request_: HookRequest
) -> None:
    template = (
        '{"event": "e", "resource": {"prefect.resource.id": "{{ body.model }}x"}, '
        '"n": {{ body.n|default(0) + 1 }}}'
    )
    hook = workspace.create_webhook("strict", template)
    outcome = workspace.receive(hook.slug, request_)
    if outcome.status == 204:  # the bodiless DELETE renders fine: an empty model and n = 1
        assert outcome.events[0].resource.id == "x"
        return
    assert outcome.status == 400
    assert outcome.error and "\n" not in outcome.error
    assert workspace.events()["failed"].tolist() == [True]


def test_injected_clock_and_ids_make_receiving_deterministic(tmp_path: Path) -> None:
    def receive_once(folder: str) -> dict[str, object]:
        ticks = itertools.count()
        numbers = itertools.count(1)
        ws = hooklab.Workspace(
            tmp_path / folder / "h.db",
            clock=lambda: START + timedelta(seconds=next(ticks)),
            new_id=lambda: UUID(int=next(numbers)),
        )
        hook = ws.create_webhook("models", TEMPLATE)
        request = HookRequest.fake(method="POST", form={"model": "m1"}, id="r1", received=START)
        dumped = ws.receive(hook.slug, request).events[0].model_dump(mode="json")
        ws.close()
        return dumped

    first, second = receive_once("a"), receive_once("b")
    assert first == second
    assert UUID(str(first["id"])).int < 10  # from the injected source, not uuid7
    assert str(first["occurred"]).startswith("2024-05-01T12:00:")


# Service accounts (SPEC 8)


def test_a_service_account_key_is_required_and_checked(workspace: hooklab.Workspace) -> None:
    account, key = workspace.create_service_account("ci")
    hook = workspace.create_webhook("models", TEMPLATE, service_account_id=account.id)
    missing = workspace.receive(hook.slug, post())
    wrong = workspace.receive(hook.slug, post(Authorization="Bearer hlsa_wrong"))
    other_scheme = workspace.receive(hook.slug, post(Authorization=f"Basic {key}"))
    right = workspace.receive(hook.slug, post(Authorization=f"Bearer {key}"))
    assert [o.status for o in (missing, wrong, other_scheme, right)] == [401, 401, 401, 204]
    assert missing.error == "Missing API key: this webhook requires 'Authorization: Bearer <key>'"
    assert wrong.error == "Invalid API key for this webhook's service account"
    assert {missing.reason, wrong.reason, other_scheme.reason} == {Reason.UNAUTHORIZED}
    assert wrong.events[0].event == "prefect-cloud.webhook.failed"
    for outcome in (wrong, other_scheme, right):
        assert key not in outcome.events[0].model_dump_json()
        assert "hlsa_wrong" not in outcome.events[0].model_dump_json()
    stored = workspace.requests()
    assert stored["status"].tolist() == [401, 401, 401, 204]
    assert all("authorization" not in {k.lower() for k in h} for h in stored["headers"])


def test_a_key_of_another_account_is_refused(workspace: hooklab.Workspace) -> None:
    owner, _ = workspace.create_service_account("owner")
    _, other_key = workspace.create_service_account("other")
    hook = workspace.create_webhook("models", TEMPLATE, service_account_id=owner.id)
    assert workspace.receive(hook.slug, post(Authorization=f"Bearer {other_key}")).status == 401


def test_enforcement_disables_webhooks_without_an_account(workspace: hooklab.Workspace) -> None:
    account, key = workspace.create_service_account("ci")
    open_hook = workspace.create_webhook("open", TEMPLATE)
    guarded = workspace.create_webhook("guarded", TEMPLATE, service_account_id=account.id)
    assert workspace.set_enforcement(True) == 1
    assert workspace.enforcement
    assert workspace.get_webhook(open_hook.id).enabled is False
    assert workspace.get_webhook(guarded.id).enabled is True
    assert workspace.receive(open_hook.slug, post()).status == 400
    assert workspace.receive(guarded.slug, post(Authorization=f"Bearer {key}")).status == 204


def test_under_enforcement_new_webhooks_must_name_an_account(
    workspace: hooklab.Workspace,
) -> None:
    workspace.set_enforcement(True)
    with pytest.raises(EnforcementError, match="must name a service account"):
        workspace.create_webhook("open", TEMPLATE)
    account, _ = workspace.create_service_account("ci")
    assert workspace.create_webhook("ok", TEMPLATE, service_account_id=account.id).enabled


def test_under_enforcement_a_webhook_is_re_enabled_only_after_it_gets_an_account(
    workspace: hooklab.Workspace,
) -> None:
    hook = workspace.create_webhook("open", TEMPLATE)
    workspace.set_enforcement(True)
    with pytest.raises(EnforcementError, match="only after it is given a service account"):
        workspace.update_webhook(hook.id, enabled=True)
    with pytest.raises(EnforcementError):
        workspace.toggle_webhook(hook.id)
    assert workspace.get_webhook(hook.id).enabled is False
    account, _ = workspace.create_service_account("ci")
    workspace.update_webhook(hook.id, service_account_id=account.id)
    assert workspace.toggle_webhook(hook.id).enabled is True


def test_switching_enforcement_off_re_enables_nothing(workspace: hooklab.Workspace) -> None:
    hook = workspace.create_webhook("open", TEMPLATE)
    workspace.set_enforcement(True)
    assert workspace.set_enforcement(False) == 0
    assert workspace.get_webhook(hook.id).enabled is False
    assert workspace.toggle_webhook(hook.id).enabled is True


def test_deleting_an_account_deletes_its_webhooks(workspace: hooklab.Workspace) -> None:
    account, key = workspace.create_service_account("ci")
    hook = workspace.create_webhook("guarded", TEMPLATE, service_account_id=account.id)
    keep = workspace.create_webhook("open", TEMPLATE)
    workspace.receive(hook.slug, post(Authorization=f"Bearer {key}"))
    assert workspace.delete_service_account("ci") == [hook.id]
    assert workspace.list_webhooks() == [keep]
    assert workspace.receive(hook.slug, post(Authorization=f"Bearer {key}")).status == 404
    assert len(workspace.events(hook.id)) == 1  # history stays
    with pytest.raises(ServiceAccountNotFound):
        workspace.get_service_account(account.id)


def test_a_webhook_cannot_name_an_unknown_account(workspace: hooklab.Workspace) -> None:
    with pytest.raises(ServiceAccountNotFound):
        workspace.create_webhook("x", TEMPLATE, service_account_id="nope")


# Where the file lives


def test_default_file_is_under_hooklab_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOOKLAB_HOME", str(tmp_path / "home"))
    ws = hooklab.Workspace()
    assert Path(ws.path) == tmp_path / "home" / "hooklab.db"
    assert (tmp_path / "home" / "hooklab.db").is_file()
    ws.close()


def test_hooklab_home_defaults_to_dot_hooklab(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HOOKLAB_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert default_home() == tmp_path / ".hooklab"


def test_the_same_request_received_twice_is_two_deliveries(workspace: hooklab.Workspace) -> None:
    hook = workspace.create_webhook("models", TEMPLATE)
    request = post("m1")
    first = workspace.receive(hook.slug, request)
    second = workspace.receive(hook.slug, request)  # a notebook cell run twice
    assert (first.status, second.status) == (204, 204)
    assert first.request is not None and second.request is not None
    assert first.request.id != second.request.id
    assert workspace.requests()["id"].tolist() == [first.request.id, second.request.id]


def test_requests_frame_shows_what_arrived_and_what_it_got(workspace: hooklab.Workspace) -> None:
    hook = workspace.create_webhook("models", TEMPLATE)
    request = HookRequest.fake(
        method="POST", path=f"/hooks/{hook.slug}", query="run=7", form={"model": "m1"},
        headers={"Authorization": "Bearer k", "User-Agent": "cron"}, client="10.0.0.9",
    )  # fmt: skip
    workspace.receive(hook.slug, request)
    row = workspace.requests().iloc[0]
    assert (row["method"], row["path"], row["query"]) == ("POST", f"/hooks/{hook.slug}", "run=7")
    assert (row["content_type"], row["body"], row["size"]) == (
        "application/x-www-form-urlencoded", "model=m1", 8,
    )  # fmt: skip
    assert (row["client"], row["status"], row["webhook_name"]) == ("10.0.0.9", 204, "models")
    assert row["headers"] == {
        "User-Agent": "cron",
        "Content-Type": "application/x-www-form-urlencoded",
        "Content-Length": "8",
    }
    assert row["received"] == request.received


FUZZ_TEMPLATES = [
    "{{ body|tojson }}",
    "{{ body|from_cloud_event(headers) }}",
    "{{ body }}",
    "static text",
    '{"event": "{{ body.a }}", "resource": {"prefect.resource.id": "{{ body.b|default("x") }}"}}',
    '{"event": "e", "resource": {{ body|tojson }}}',
    '{"event": "e", "resource": {"prefect.resource.id": "x"}, "related": {{ body|tojson }}}',
    '{"event": "e", "resource": {"prefect.resource.id": "x"}, "occurred": {{ body|tojson }}}',
    "{{ body.items()|list }}",
    "{{ (body * 3)|tojson }}",
    "{{ body|sum }}",
]
FUZZ_TYPES = [
    "application/json", "application/x-www-form-urlencoded", "text/plain", "",
    "application/cloudevents+json", "application/cloudevents-batch+json",
]  # fmt: skip
FUZZ_VALUES: list[object] = [
    None, 1, 1.5, True, "s", [], {}, [1, {"a": 2}], {"a": "b", "b": ""},
    {"prefect.resource.id": "x", "n": 1},
    {"specversion": "1.0", "type": "t", "source": "s", "id": "1", "data": [1]},
    [{"specversion": "1.0"}], "2024-01-01", {"a": {"b": {"c": None}}},
]  # fmt: skip


def test_receive_never_raises_on_random_bodies_and_templates(
    workspace: hooklab.Workspace,
) -> None:
    rnd = random.Random(2024)  # fixed: the same 400 requests on every run
    hooks = [workspace.create_webhook(f"t{i}", t) for i, t in enumerate(FUZZ_TEMPLATES)]
    for _ in range(400):
        roll = rnd.random()
        if roll < 0.5:
            body = json.dumps(rnd.choice(FUZZ_VALUES)).encode()
        elif roll < 0.75:
            body = bytes(rnd.randrange(256) for _ in range(rnd.randrange(24)))
        else:
            body = rnd.choice([b"", b"{", b"[1,", b"\xef\xbb\xbf{}", b"NaN", b"a=1&b=%FF&&=x"])
        headers = [("Content-Type", rnd.choice(FUZZ_TYPES))]
        if rnd.random() < 0.3:
            headers += [("ce-specversion", "1.0"), ("ce-type", "t"), ("ce-source", "%ZZ")]
        request = HookRequest.fake(method=rnd.choice(["GET", "POST"]), body=body, headers=headers)
        outcome = workspace.receive(rnd.choice(hooks).slug, request)
        assert outcome.status in (204, 400)
        assert outcome.events
        assert outcome.error is None or "\n" not in outcome.error
        for event in outcome.events:
            event.model_dump_json()
    assert workspace.store.count("requests") == 400
    statuses = workspace.requests()["status"].value_counts()
    assert statuses[204] > 20 and statuses[400] > 20  # both paths were really exercised


def test_a_bad_signature_is_a_401_with_its_own_reason(workspace: hooklab.Workspace) -> None:
    from hooklab.core.signatures import sign

    hook = workspace.create_webhook("signed", TEMPLATE)
    workspace.update_webhook(
        hook.id, signature_preset="github", signature_secret="a-github-secret-1234"
    )
    body = b'{"model": "m1"}'
    json_type = {"Content-Type": "application/json"}
    signed = {**json_type, **sign("github", "a-github-secret-1234", body, timestamp=0)}
    good = HookRequest.fake(method="POST", body=body, headers=signed)
    forged_headers = {**json_type, **sign("github", "other", body, timestamp=0)}
    forged = HookRequest.fake(method="POST", body=body, headers=forged_headers)
    assert workspace.receive(hook.slug, good).status == 204
    refused = workspace.receive(hook.slug, forged)
    assert (refused.status, refused.reason) == (401, Reason.BAD_SIGNATURE)


def test_a_reference_resolves_by_id_name_or_slug_or_to_a_deleted_webhooks_history(
    workspace: hooklab.Workspace,
) -> None:
    hook = workspace.create_webhook("models", TEMPLATE)
    for ref in (hook.id, "models", hook.slug):
        assert workspace.resolve_webhook(ref) == workspace.resolve_webhook(ref, deleted=True)
        assert workspace.resolve_webhook(ref) == hook.id
    workspace.receive(hook.slug, post("m1"))
    workspace.delete_webhook(hook.id)
    # The name is gone with the webhook; the id still reaches its history, in any UUID spelling.
    assert workspace.resolve_webhook(hook.id.upper(), deleted=True) == hook.id
    with pytest.raises(hooklab.WebhookNotFound):
        workspace.resolve_webhook(hook.id)  # not for a live webhook's operations
    with pytest.raises(hooklab.WebhookNotFound) as caught:
        workspace.resolve_webhook("models", deleted=True)
    assert str(caught.value) == (
        "Webhook 'models' not found. A deleted webhook's history is found by its id, "
        "which the history shows in place of its name."
    )
    with pytest.raises(hooklab.WebhookNotFound) as caught:
        workspace.resolve_webhook("models")  # a live webhook's operation: no history meant
    assert str(caught.value) == "Webhook 'models' not found."
    never = "1c8a3e36-52c7-4b7a-9d4e-6a0f1f5f2b11"
    with pytest.raises(hooklab.WebhookNotFound) as caught:
        workspace.events(never)  # an id no webhook and no history ever had
    assert str(caught.value) == f"Webhook with id '{never}' not found."
    with pytest.raises(hooklab.WebhookNotFound, match="'nope' not found"):
        workspace.requests("nope")


def test_history_reads_take_one_filter_with_times_as_text(workspace: hooklab.Workspace) -> None:
    hook = workspace.create_webhook("models", TEMPLATE)
    other = workspace.create_webhook("other", TEMPLATE.replace("model.refreshed", "other"))
    workspace.receive(hook.slug, post("m1"))
    bad = HookRequest.fake(method="POST", body="{", headers={"Content-Type": "application/json"})
    workspace.receive(hook.slug, bad)
    workspace.receive(other.slug, post("m2"))

    where = HistoryFilter.of("models", since="1h")
    assert workspace.events(where)["webhook_name"].tolist() == ["models", "models"]
    assert workspace.events(where, failed=True)["failed"].tolist() == [True]
    assert workspace.events(since="2000-01-01", until="2001-01-01").empty
    assert workspace.requests(where)["body"].tolist() == ["model=m1", "{"]
    # For requests, `event` and `failed` keep those that produced such events.
    assert workspace.requests(event="other")["body"].tolist() == ["model=m2"]
    assert workspace.requests(failed=True)["body"].tolist() == ["{"]
    assert [r.request.body for r in workspace.captured(where)] == [b"model=m1", b"{"]


def test_a_name_two_webhooks_share_is_refused_with_their_ids(
    workspace: hooklab.Workspace,
) -> None:
    first = workspace.create_webhook("twins", TEMPLATE)
    second = workspace.create_webhook("twins", TEMPLATE)
    with pytest.raises(hooklab.AmbiguousWebhook) as caught:
        workspace.get_webhook("twins")
    assert str(caught.value) == (
        f"Webhook name 'twins' is ambiguous: 2 webhooks have it ({first.id}, {second.id}); "
        "use an id."
    )
    assert workspace.get_webhook(second.id) == second  # an id still says which
    assert workspace.get_webhook(first.slug) == first


def test_a_negative_limit_is_refused_in_one_line(ws: hooklab.Workspace) -> None:
    # It read as no limit at all (every row), where the command line refuses it.
    hook = ws.create_webhook("models", '{"event": "e", "resource": {"prefect.resource.id": "r"}}')
    ws.receive(hook.slug, HookRequest.fake(method="POST", form={"model": "m"}))
    for read in (ws.events, ws.requests, ws.events_arrow, ws.requests_arrow):
        with pytest.raises(InvalidInput, match=r"^limit must be 0 or more .*not -1$"):
            read(limit=-1)
    assert len(ws.events(limit=0)) == 0 and len(ws.events(limit=1)) == 1
