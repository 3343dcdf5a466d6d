"""The Arrow readout against the readers it replaced, over the real GitHub corpus: every filter
gives the same rows with the same values; only the types improve."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from corpus_support import github_deliveries
from readout_corpus import START, build_corpus
from readout_reference import differences, old_events, old_flatten, old_requests

import hooklab
from hooklab.store import readout, snapshots
from hooklab.store.filters import HistoryFilter


@pytest.fixture(
    params=[
        "ADBC in this process",
        "sqlite3 in this process",
        "in the sidecar",
        "in the sidecar, by the pipe",
    ]
)
def corpus(
    request: pytest.FixtureRequest, store: hooklab.Workspace, monkeypatch: pytest.MonkeyPatch
) -> Iterator[hooklab.Workspace]:
    """The store, read in this process by ADBC's driver (the store's connection lent for the
    read) or by sqlite3, or in the sidecar (ADBC), its batches handed over through shared
    memory or, where there is too little, the pipe; in small batches."""
    local = request.param == "sqlite3 in this process"
    adbc_here = request.param == "ADBC in this process"
    monkeypatch.setattr(readout, "IN_PROCESS", adbc_here)
    monkeypatch.setattr(readout, "LOCAL_ROWS", 10**9 if local else 0)
    monkeypatch.setattr(readout, "LOCAL_MOST", 10**9 if local else 0)
    monkeypatch.setattr(readout, "BATCH_ROWS", 50)
    if request.param.endswith("pipe"):
        monkeypatch.setattr(snapshots, "SHARED_MEMORY_FREE", 1 << 60)
    opened: list[str] = []

    class Counted(snapshots.InProcess):
        def __init__(self, driver: object, location: str, *, sqlite: bool = False) -> None:
            opened.append(location)
            super().__init__(driver, location, sqlite=sqlite)

    monkeypatch.setattr(readout, "InProcess", Counted)
    yield store
    assert bool(opened) == adbc_here  # each read where the parameter says


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[hooklab.Workspace]:
    ws = build_corpus(tmp_path_factory.mktemp("corpus") / "hooklab.db")
    yield ws
    ws.close()


def test_the_corpus_store_has_what_the_comparison_needs(corpus: hooklab.Workspace) -> None:
    events = corpus.events()
    assert len(events) >= 240 and events["failed"].sum() >= 60
    assert events["webhook_name"].isna().sum() >= 6  # the deleted webhook's events
    assert {"resource.github.org", "related.sender", "related.installation"} <= set(events)


def test_events_are_the_same_rows_and_values(corpus: hooklab.Workspace) -> None:
    assert differences(corpus.events(), old_events(corpus.store)) == []


def test_requests_are_the_same_rows_and_values(corpus: hooklab.Workspace) -> None:
    new = corpus.requests()
    assert differences(new, old_requests(corpus.store)) == []
    assert new["headers"].iloc[-1]["X-Tag"] == "a, b"  # repeated names joined, as received
    assert new["body"].iloc[-1].startswith("model=\ufffd")


def _filters(corpus: hooklab.Workspace) -> list[HistoryFilter]:
    gone = corpus.events()["webhook_id"][corpus.events()["webhook_name"].isna()].iloc[0]
    hour = START + timedelta(hours=5)
    return [
        HistoryFilter(webhook=corpus.get_webhook("github").id),
        HistoryFilter(webhook=gone),
        HistoryFilter(event="github.push"),
        HistoryFilter(failed=True),
        HistoryFilter(failed=False, webhook=corpus.get_webhook("models").id),
        HistoryFilter(since=hour),
        HistoryFilter(until=hour),
        HistoryFilter(since=hour, until=hour + timedelta(hours=2), failed=True),
        HistoryFilter(since=START + timedelta(days=400)),
    ]


def test_every_filter_keeps_the_same_events(corpus: hooklab.Workspace) -> None:
    for where in _filters(corpus):
        new = corpus.events(where)
        assert differences(new, old_events(corpus.store, where)) == [], where


def test_every_filter_keeps_the_same_requests(corpus: hooklab.Workspace) -> None:
    for where in _filters(corpus):
        new = corpus.requests(where)
        assert differences(new, old_requests(corpus.store, where)) == [], where


def test_a_limit_keeps_the_most_recent_oldest_first(corpus: hooklab.Workspace) -> None:
    where = HistoryFilter(webhook=corpus.get_webhook("github").id)
    old = old_events(corpus.store, where).tail(7).reset_index(drop=True)
    new = corpus.events(where, limit=7)
    assert differences(new, old) == []
    requests = old_requests(corpus.store).tail(3).reset_index(drop=True)
    assert differences(corpus.requests(limit=3), requests) == []


def test_flattened_payloads_are_the_same_values(corpus: hooklab.Workspace) -> None:
    # The GitHub payloads change a field's type between deliveries; the seed's do not.
    for name in ("github", "models"):
        old = old_flatten(old_events(corpus.store, HistoryFilter(corpus.get_webhook(name).id)))
        new = corpus.events(name, flatten=True)
        assert differences(new, old) == [], name


def test_only_the_types_improve(corpus: hooklab.Workspace) -> None:
    new, old = corpus.requests(), old_requests(corpus.store)
    assert str(new["received"].dtype) == "datetime64[us, UTC]"
    assert str(new["status"].dtype) == str(old["status"].dtype) == "int64"
    assert str(new["headers"].dtype) == "headers" and str(old["headers"].dtype) == "object"
    events = corpus.events()
    assert events["failed"].dtype == bool and str(events["occurred"].dtype).endswith("UTC]")
    assert (
        events["payload"].iloc[0]["action"]
        == json.loads(Path(github_deliveries()[0]).read_text())["action"]
    )
