"""What a diff says when printed: the summary, then every difference under its request."""

from __future__ import annotations

from hooklab.core.examples import DYNAMIC_TEMPLATE as SEED
from hooklab.core.request import HookRequest
from hooklab.history import diffs
from hooklab.history.replay import diff, replay


def post(model: str) -> HookRequest:
    return HookRequest.fake(method="POST", form={"model": model, "friendly_name": model.upper()})


def test_str_of_a_diff_shows_each_changed_field_with_both_values() -> None:
    requests = [post("a"), post("b")]
    old = replay(requests, SEED)
    renamed = replay(requests, SEED.replace('"Data Science"', '"ML"'))
    text = str(diff(old, renamed))
    lines = text.splitlines()
    assert lines[0] == diff(old, renamed).summary()
    assert lines[1:] == [
        f"request {requests[0].id}:",
        "  resource.producing-team: 'Data Science' -> 'ML'",
        f"request {requests[1].id}:",
        "  resource.producing-team: 'Data Science' -> 'ML'",
    ]


def test_str_of_a_diff_names_added_and_dropped_events() -> None:
    requests = [post("a"), post("b")]
    both, first = replay(requests, SEED), replay(requests[:1], SEED)
    assert str(diff(both, first)).splitlines()[1:] == [
        f"request {requests[1].id}:",
        "  dropped event 'model-update'",
    ]
    assert str(diff(first, both)).splitlines()[-1] == "  added event 'model-update'"


def test_a_long_diff_lists_the_first_differences_and_says_how_many_more() -> None:
    requests = [post(str(n)) for n in range(diffs.MAX_SHOWN + 5)]
    changes = diff(replay(requests, SEED), replay(requests, SEED.replace('"Data Science"', '"ML"')))
    lines = str(changes).splitlines()
    assert lines[-1] == "... and 5 more differences in .frame"
    assert sum(line.startswith("  resource.producing-team") for line in lines) == diffs.MAX_SHOWN


RELATED = (
    '{"event": "e", "resource": {"prefect.resource.id": "r"}, "related": ['
    '{"prefect.resource.id": "user.{{ body.user }}", "prefect.resource.role": "sender"}]}'
)


def test_a_related_resource_whose_id_changed_counts_once_under_its_role() -> None:
    requests = [HookRequest.fake(json={"user": "ada"})]
    old = replay(requests, RELATED)
    found = diff(old, replay(requests, RELATED.replace("user.", "person.")))
    assert found.frame[["field", "old", "new"]].values.tolist() == [
        ["related.sender", "user.ada", "person.ada"]
    ]
    assert "1 fields changed in 1 requests" in found.summary()


def test_a_related_resource_whose_other_labels_changed_is_shown_whole() -> None:
    requests = [HookRequest.fake(json={"user": "ada"})]
    named = RELATED.replace('"sender"}', '"sender", "prefect.resource.name": "Ada"}')
    found = diff(replay(requests, RELATED), replay(requests, named))
    assert found.frame["field"].tolist() == ["related"]
    both = diff(replay(requests, RELATED), replay(requests, named.replace("user.", "person.")))
    assert both.frame["field"].tolist() == ["related", "related.sender"]
