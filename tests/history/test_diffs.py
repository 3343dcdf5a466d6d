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
