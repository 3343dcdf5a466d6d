"""Replay gives exactly the events the receiver's pipeline gives; diff compares two replays."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from corpus_support import github_deliveries

import hooklab
from hooklab.core.examples import DYNAMIC_TEMPLATE as SEED
from hooklab.core.pipeline import render_events
from hooklab.core.request import HookRequest
from hooklab.core.templates import TemplateError
from hooklab.history.replay import diff, draft_webhook, replay
from hooklab.notebook.deterministic import deterministic

RENAMED = SEED.replace("product.models.", "models.")


def post(model: str, name: str = "Name") -> HookRequest:
    return HookRequest.fake(method="POST", form={"model": model, "friendly_name": name})


def json_post(body: object) -> HookRequest:
    return HookRequest.fake(method="POST", json=body)


def event(
    extra: str = "", *, name: str = '"x"', resource: str = '{"prefect.resource.id": "r"}'
) -> str:
    return f'{{"event": {name}, "resource": {resource}{extra}}}'


JSON_TYPE = {"Content-Type": "application/json"}
OWNER = '{"prefect.resource.id": "o", "prefect.resource.role": "owner", "x": "y"}'

# Templates and requests that take every lane: the plain-event fast lane, and each reason to
# leave it (own ids and times, numbers as labels, bad JSON, lists, oversize names, ...).
CASES: list[tuple[str, HookRequest]] = [
    (SEED, post("a")),
    (SEED, post("b", 'ünï "quoted" \\ name')),
    (SEED, HookRequest.fake(method="POST", headers=JSON_TYPE, body="{")),
    (event(resource='{"prefect.resource.id": "r", "n": {{ body.n }}}'), json_post({"n": 3})),
    (event(', "payload": {"k": [1, {"a": null}]}'), post("c")),
    (event(', "payload": 5'), post("c")),
    (event(', "occurred": "2024-05-01T12:00:00+02:00"'), post("c")),
    (event(', "id": "9b8a5d3e-0000-4000-8000-000000000000"'), post("c")),
    (event(', "follows": null, "extra": 1'), post("c")),
    (event(resource='{"prefect.resource.id": ""}'), post("c")),
    (event(resource="{}"), post("c")),
    (event(f', "related": [{OWNER}]'), post("c")),
    (event(', "related": [{"prefect.resource.id": "o"}]'), post("c")),
    (event(', "related": []'), post("c")),
    (event(', "related": null'), post("c")),
    (event(name='"' + "e" * 1025 + '"'), post("c")),
    (event(name="5"), post("c")),
    ("[" + event() + "]", post("c")),
    (
        event(
            name='"{{ body.missing.deeper }}"',
            resource='{"prefect.resource.id": "{{ headers["content-type"] }}"}',
        ),
        post("c"),
    ),
    (
        event(
            name='"{{ body.get("model") }}"',
            resource='{"prefect.resource.id": "{{ body.model|upper }}"}',
        ),
        post("c"),
    ),
    (
        event(name='"{{ body[0] }}"', resource='{"prefect.resource.id": "{{ query.q }}"}'),
        json_post(["first"]),
    ),
    (event(resource='{"prefect.resource.id": "{{ body.x.y }}"}'), json_post({"x": {"y": "deep"}})),
    (
        event(resource='{"prefect.resource.id": "{{ body }}"}'),
        HookRequest.fake(method="POST", body="plain text"),
    ),
    (
        event(name='"{{ method }}"', resource='{"prefect.resource.id": "{{ body.__class__ }}"}'),
        post("c"),
    ),
    (event(name='"{{ "%s" % body.model }}"'), post("c")),
    # Values pydantic cannot write: a lone surrogate, and nesting past its depth limit.
    (event(), HookRequest.fake(method="POST", headers=JSON_TYPE, body='{"a": "\\ud800"}')),
    (event(', "payload": {"a": ' + "[" * 300 + "]" * 300 + "}"), post("c")),
]


@pytest.mark.parametrize(("template", "request_"), CASES)
def test_replay_gives_the_pipeline_outcome_exactly(template: str, request_: HookRequest) -> None:
    hook = draft_webhook(template, "4f1c6b0e-0000-4000-8000-00000000abcd", "cases")
    clock, new_id = deterministic(seed=1)
    expected = render_events(hook, request_, clock=clock, new_id=new_id)
    clock, new_id = deterministic(seed=1)
    (got,) = replay([request_], hook, clock=clock, new_id=new_id).outcomes
    assert got == expected
    assert [e.model_dump() for e in got.events] == [e.model_dump() for e in expected.events]


def test_replaying_stored_requests_through_the_same_webhook_gives_the_same_events(
    ws: hooklab.Workspace,
) -> None:
    hook = ws.create_webhook("models", SEED)
    for i in range(5):
        ws.receive(hook.slug, post(f"m{i}", f"Model {i}"))
    ws.receive(
        hook.slug,
        HookRequest.fake(method="POST", headers={"Content-Type": "application/json"}, body="{"),
    )
    original = ws.events()
    result = replay(ws.captured(), hook, workspace=ws)
    assert diff(original, result).frame.empty
    same = ["event", "resource.id", "resource.name", "resource.producing-team", "related.webhook",
            "webhook_id", "webhook_name", "request_id", "received", "failed", "error"]  # fmt: skip
    assert result.frame[same].equals(original[same])
    assert result.frame["payload"].tolist() == original["payload"].tolist()
    assert result.frame["related"].tolist() == original["related"].tolist()


def test_replay_returns_events_and_failures_and_leaves_history_alone(ws: hooklab.Workspace) -> None:
    hook = ws.create_webhook("models", SEED)
    ws.receive(hook.slug, post("a"))
    ws.receive(hook.slug, json_post({"model": 1}))
    ws.receive(hook.slug, json_post({"model": '"m1"'}))
    history = ws.events()
    # The value is written unquoted: text is not JSON, a number is JSON but not a label, and
    # only a value that carries its own quotes makes an event.
    unquoted = '{"event": "x", "resource": {"prefect.resource.id": {{ body.model }}}}'
    result = replay(ws.captured(), unquoted, workspace=ws)
    assert len(result) == 3
    assert result.events["resource.id"].tolist() == ["m1"]
    assert result.failures["error"].tolist() == [
        "Template output is not valid JSON: body.model (line 1 of the template) is written bare "
        "where a JSON value goes, and its text is not JSON: write {{ body.model|tojson }} "
        "(Expecting value at line 1 column 52 (char 51))",
        'resource["prefect.resource.id"]: Input should be a valid string, got 1',
    ]
    assert result.summary().startswith("3 requests replayed: 1 produced events, 2 failed")
    assert ws.store.count("requests") == 3
    pd.testing.assert_frame_equal(ws.events(), history)


def test_a_template_keeps_each_request_with_its_own_webhook(ws: hooklab.Workspace) -> None:
    first = ws.create_webhook("first", SEED)
    second = ws.create_webhook("second", SEED)
    ws.receive(first.slug, post("a"))
    ws.receive(second.slug, post("b"))
    result = replay(ws.captured(), RENAMED, workspace=ws)
    assert result.events["webhook_name"].tolist() == ["first", "second"]
    assert result.events["related.webhook"].tolist() == [first.resource_id, second.resource_id]


def test_save_stores_the_replay_as_new_requests(ws: hooklab.Workspace) -> None:
    hook = ws.create_webhook("models", SEED)
    ws.receive(hook.slug, post("a"))
    result = replay(ws.captured(), RENAMED, workspace=ws, save=True)
    events = ws.events()
    assert events["resource.id"].tolist() == ["product.models.a", "models.a"]
    request_ids = events["request_id"].tolist()
    assert request_ids[1] != request_ids[0]
    assert result.events["request_id"].tolist() == request_ids[:1]
    with pytest.raises(ValueError, match="needs the workspace"):
        replay([post("a")], SEED, save=True)


def test_replay_accepts_a_requests_frame(ws: hooklab.Workspace) -> None:
    hook = ws.create_webhook("models", SEED)
    ws.receive(
        hook.slug,
        HookRequest.fake(method="POST", body=b"model=\xff", headers={"Content-Type": "text/plain"}),
    )
    ws.receive(hook.slug, post("a"))
    frame = ws.requests()
    with_store = replay(frame, SEED, workspace=ws)
    assert with_store.frame["webhook_name"].tolist() == ["models", "models"]
    # Without the workspace the frame's text is all there is; the form request is whole.
    alone = replay(frame.iloc[[1]], SEED)
    assert alone.events["resource.id"].tolist() == ["product.models.a"]
    with pytest.raises(ValueError, match="requests frame"):
        replay(ws.events(), SEED)


def test_a_broken_template_fails_at_once_with_its_line() -> None:
    with pytest.raises(TemplateError, match="line 2"):
        replay([post("a")], '{\n"event": "{{ body.x "\n}')


def test_progress_callback_reports_to_the_end() -> None:
    seen: list[tuple[int, int]] = []
    replay([post(str(i)) for i in range(250)], SEED, progress=lambda d, t: seen.append((d, t)))
    assert seen[-1] == (250, 250) and len(seen) <= 251
    assert all(total == 250 for _, total in seen)


def test_seeded_replays_are_identical() -> None:
    requests = [post(str(i)) for i in range(3)]
    runs = []
    for _ in range(2):
        clock, new_id = deterministic(seed=5)
        runs.append(replay(requests, SEED, clock=clock, new_id=new_id).frame)
    assert runs[0].equals(runs[1])


def test_diff_names_added_dropped_and_changed_fields() -> None:
    requests = [post("a", "A"), post("b", "B"), post("c", "C")]
    old = replay(requests, SEED)
    new_template = SEED.replace('"producing-team": "Data Science"', '"producing-team": "ML"')
    new_template = new_template.replace(
        "{{ body.model }}", "{{ body.model }}{% if body.model == 'c' %}{{ oops }}{% endif %}"
    )
    new = replay(requests, new_template)
    changes = diff(old, new)
    assert set(changes.frame["change"]) == {"changed"}
    team = changes.frame[changes.frame["field"] == "resource.producing-team"]
    assert team[["old", "new"]].values.tolist() == [["Data Science", "ML"]] * 3
    assert "3 requests compared: 0 unchanged" in changes.summary()

    fewer = replay(requests[:2], SEED)
    dropped = diff(old, fewer).frame
    assert dropped[["request_id", "change"]].values.tolist() == [[requests[2].id, "dropped"]]
    added = diff(fewer, old).frame
    assert added["change"].tolist() == ["added"]
    assert "changed" in repr(changes)  # its HTML view: tests/notebook/test_reprs.py


def test_diff_of_a_failure_shows_the_error_appearing() -> None:
    requests = [post("a")]
    old = replay(requests, SEED)
    new = replay(requests, SEED.replace('"model-update"', "model-update"))
    fields = dict(zip(diff(old, new).frame["field"], diff(old, new).frame["new"], strict=True))
    assert fields["event"] == "prefect-cloud.webhook.failed"
    assert fields["error"].startswith("Template output is not valid JSON")


BARE = '{"event": "x", "resource": {"prefect.resource.id": {{ body.model }}}}'
MISSING = '{"event": "x", "resource": {"prefect.resource.id": "r"}, "a": {{ body.nope.x }}}'


CALLED = '{"event": "{{ body.model.nope() }}", "resource": {"prefect.resource.id": "r"}}'


@pytest.mark.parametrize(
    ("template", "edited", "words"),
    [
        # The same error further along the line of the output, or two lines down.
        (BARE, BARE.replace('"x"', '"a.longer.name"'), "is written bare"),
        (BARE, "\n\n" + BARE, "is written bare"),
        # The same render error, on another line of the template.
        (CALLED, "\n" + CALLED, "has no attribute 'nope'"),
    ],
    ids=["another-column", "another-line", "another-template-line"],
)
def test_the_same_failure_somewhere_else_is_unchanged(
    template: str, edited: str, words: str
) -> None:
    requests = [json_post({"model": "a b"})]
    old, new = replay(requests, template), replay(requests, edited)
    (was,), (now,) = old.failures["error"], new.failures["error"]
    assert was != now and words in now  # only where it points differs
    changes = diff(old, new)
    assert changes.frame.empty
    assert changes.summary().startswith("1 requests compared: 1 unchanged; ")


def test_another_failure_of_the_same_request_is_a_change() -> None:
    requests = [json_post({"model": "a b"})]
    changes = diff(replay(requests, BARE), replay(requests, MISSING)).frame
    assert set(changes["field"]) == {"error", "payload.error", "payload.rendered"}
    news = dict(zip(changes["field"], changes["new"], strict=True))
    assert "wrote nothing" in news["error"]


class Bar:
    """A progress display: told how far a job has got, and closed."""

    def __init__(self) -> None:
        self.shown: list[tuple[int, int]] = []
        self.closed = 0

    def __call__(self, done: int, total: int) -> None:
        self.shown.append((done, total))

    def close(self) -> None:
        self.closed += 1


def test_a_progress_display_is_closed_when_the_replay_ends_and_when_it_fails() -> None:
    bar = Bar()
    replay([post(str(i)) for i in range(10)], SEED, progress=bar)
    assert bar.shown[-1] == (10, 10) and bar.closed == 1

    class Failing(Bar):
        def __call__(self, done: int, total: int) -> None:
            raise RuntimeError("the display broke")

    failing = Failing()
    with pytest.raises(RuntimeError, match="the display broke"):
        replay([post(str(i)) for i in range(10)], SEED, progress=failing)
    assert failing.closed == 1


def github_requests() -> list[HookRequest]:
    return [
        HookRequest.fake(
            method="POST",
            headers={"X-GitHub-Event": path.parent.name, "X-GitHub-Delivery": path.parent.name},
            json=json.loads(path.read_text()),
        )
        for path in github_deliveries()
    ]


GITHUB = """{
  "event": "github.{{ headers['X-GitHub-Event'] }}{{ ('.' ~ body.action) if body.action }}",
  "resource": {
    "prefect.resource.id": "github.repo.{{ body.repository.full_name }}",
    "prefect.resource.name": "{{ body.repository.name }}"
  },
  "payload": {"sender": {{ body.sender.login|tojson }}}
}"""


def test_replay_and_diff_on_the_github_corpus() -> None:
    requests = github_requests()
    clock, new_id = deterministic()
    old = replay(requests, GITHUB, clock=clock, new_id=new_id)
    # The same requests through the receiver's own pipeline give the same outcomes.
    clock, new_id = deterministic()
    hook = draft_webhook(GITHUB)
    assert old.outcomes == [render_events(hook, r, clock=clock, new_id=new_id) for r in requests]
    assert len(old.events) > 40
    assert set(old.events["event"]) >= {"github.push", "github.issues.pinned"}

    by_org = GITHUB.replace(
        "github.repo.{{ body.repository.full_name }}",
        "github.org.{{ body.organization.login or body.sender.login }}",
    )
    new = replay(requests, by_org)
    changes = diff(old, new)
    changed = changes.frame[changes.frame["field"] == "resource.id"]
    assert len(changed) == len(old.events)
    assert changed["new"].str.startswith("github.org.").all()


def test_a_label_named_id_keeps_the_resource_id_in_a_replay_as_in_the_history() -> None:
    template = (
        '{"event": "e", "resource": {"prefect.resource.id": "the-id", "id": "a label",'
        ' "name": "another"}}'
    )
    ws = hooklab.Workspace(":memory:")
    hook = ws.create_webhook("labels", template)
    request = HookRequest.fake(method="POST", json={"a": 1})
    ws.receive(hook.slug, request)
    replayed = replay([request], template).events
    stored = ws.events()
    columns = ["resource.id", "resource.name", "resource.id.1", "resource.name.1"]
    assert [c for c in replayed.columns if c.startswith("resource.")] == columns
    assert replayed[columns].iloc[0].tolist()[:1] == ["the-id"]
    assert replayed[columns].iloc[0].tolist()[2:] == ["a label", "another"]
    assert replayed[columns].iloc[0].tolist()[2:] == stored[columns].iloc[0].tolist()[2:]
