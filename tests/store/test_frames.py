"""Events and requests as DataFrames: columns, labels and roles, flattened payloads, JSON columns
that read as dicts, and stored events read in chunks."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest

import hooklab
from hooklab.core.request import HookRequest
from hooklab.store import frames, readout
from hooklab.store.jsoncolumn import JSONArray

TEMPLATE = """{
  "event": "model-update",
  "resource": {
    "prefect.resource.id": "product.models.{{ body.model }}",
    "prefect.resource.name": "{{ body.name }}"{% if body.team %},
    "team": "{{ body.team }}"{% endif %}
  },
  "related": [{"prefect.resource.id": "owner.{{ body.owner }}", "prefect.resource.role": "owner"}]
}"""


def post(**form: str) -> HookRequest:
    return HookRequest.fake(method="POST", form=form)


def test_events_frame_columns_in_order(ws: hooklab.Workspace) -> None:
    hook = ws.create_webhook("models", TEMPLATE)
    ws.receive(hook.slug, post(model="a", name="A", owner="ann"))
    ws.receive(hook.slug, post(model="b", name="B", owner="bob", team="DS"))
    frame = ws.events()
    assert frame.columns.tolist() == [
        "id", "occurred", "received", "event", "resource.id", "resource.name", "resource.team",
        "related", "related.owner", "related.webhook", "payload", "webhook_id", "webhook_name",
        "request_id", "failed", "error",
    ]  # fmt: skip
    assert frame["resource.team"].isna().tolist() == [True, False]
    assert frame["related.owner"].tolist() == ["owner.ann", "owner.bob"]
    assert frame["related.webhook"].tolist() == [hook.resource_id] * 2
    assert str(frame["occurred"].dtype) == "datetime64[us, UTC]"
    assert frame["failed"].dtype == bool


def test_payload_and_related_read_as_python_values(ws: hooklab.Workspace) -> None:
    hook = ws.create_webhook("models", TEMPLATE)
    ws.receive(hook.slug, post(model="a", name="A", owner="ann"))
    frame = ws.events()
    (payload,) = frame["payload"].tolist()
    assert payload["body"] == {"model": "a", "name": "A", "owner": "ann"}
    assert payload["method"] == "POST"
    assert frame["related"][0][0] == {
        "prefect.resource.id": "owner.ann",
        "prefect.resource.role": "owner",
    }
    records = frame.to_dict("records")
    assert records[0]["payload"]["body"]["model"] == "a"
    assert frame["payload"].map(lambda p: p["body"]["owner"]).tolist() == ["ann"]


def test_related_explodes_to_one_row_per_related_resource(ws: hooklab.Workspace) -> None:
    hook = ws.create_webhook("models", TEMPLATE)
    ws.receive(hook.slug, post(model="a", name="A", owner="ann"))
    ws.receive(hook.slug, post(model="b", name="B", owner="bob"))
    rows = ws.events().explode("related")
    pairs = [(r["resource.id"], r["related"]["prefect.resource.role"]) for _, r in rows.iterrows()]
    assert pairs == [
        ("product.models.a", "owner"),
        ("product.models.a", "webhook"),
        ("product.models.b", "owner"),
        ("product.models.b", "webhook"),
    ]


def test_failures_carry_their_error(ws: hooklab.Workspace) -> None:
    hook = ws.create_webhook("models", TEMPLATE)
    ws.receive(hook.slug, HookRequest.fake(method="POST", json={"model": 1}, body="x"))
    bad = HookRequest.fake(method="POST", headers={"Content-Type": "application/json"}, body="{")
    ws.receive(hook.slug, bad)
    frame = ws.events()
    assert frame["failed"].tolist() == [False, True]
    error = frame["error"].tolist()[1]
    assert error.startswith("Invalid JSON body")
    assert frame["payload"].tolist()[1]["error"] == error


def test_stored_events_are_read_in_chunks(
    ws: hooklab.Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(readout, "BATCH_ROWS", 3)
    hook = ws.create_webhook("models", TEMPLATE)
    for i in range(8):
        team = {"team": "late"} if i == 7 else {}
        ws.receive(hook.slug, post(model=str(i), name=f"N{i}", owner="o", **team))
    frame = ws.events()
    assert frame["resource.id"].tolist() == [f"product.models.{i}" for i in range(8)]
    # A label first seen in the last chunk is missing, not shifted, in the earlier ones.
    assert frame["resource.team"].isna().tolist() == [True] * 7 + [False]
    assert [p["body"]["model"] for p in frame["payload"]] == [str(i) for i in range(8)]


def test_empty_history_has_the_columns() -> None:
    frame = hooklab.Workspace(":memory:").events()
    assert frame.empty and {"id", "payload", "failed", "error"} <= set(frame.columns)


def test_events_filter_by_webhook_event_and_time(ws: hooklab.Workspace) -> None:
    first = ws.create_webhook("first", TEMPLATE)
    second = ws.create_webhook("second", TEMPLATE.replace("model-update", "other"))
    base = datetime.fromisoformat("2024-05-01T12:00:00+00:00")
    for minute, hook in enumerate([first, second, first]):
        request = HookRequest.fake(
            method="POST", form={"model": str(minute)}, received=base + timedelta(minutes=minute)
        )
        ws.receive(hook.slug, request)
    assert ws.events("first")["resource.id"].tolist() == ["product.models.0", "product.models.2"]
    assert ws.events(event="other")["webhook_name"].tolist() == ["second"]
    window = ws.events(since=base + timedelta(minutes=1), until=base + timedelta(minutes=2))
    assert window["resource.id"].tolist() == ["product.models.1"]


def test_flattened_payload_columns_replace_payload_in_place(ws: hooklab.Workspace) -> None:
    hook = ws.create_webhook("models", TEMPLATE)
    ws.receive(hook.slug, post(model="a", name="A", owner="ann"))
    flat = frames.flatten_payload_columns(ws.events())
    names = flat.columns.tolist()
    assert "payload" not in names
    at = names.index("payload.method")
    assert names[at - 1] == "related.webhook" and names[-5] == "webhook_id"
    assert flat.loc[0, "payload.body.model"] == "a"
    assert flat.loc[0, "payload.headers.Content-Type"] == "application/x-www-form-urlencoded"


def test_events_from_columns_matches_the_stored_frame(ws: hooklab.Workspace) -> None:
    hook = ws.create_webhook("models", TEMPLATE)
    outcome = ws.receive(hook.slug, post(model="a", name="A", owner="ann", team="DS"))
    stored = ws.events()
    event = outcome.events[0]
    assert outcome.request is not None
    columns = frames.EventColumns()
    columns.append(
        str(event.id), event.occurred, event.received, event.event, event.resource.root,
        [r.root for r in event.related], event.payload, hook.id, outcome.request.id, False, None,
    )  # fmt: skip
    built = frames.events_from_columns(columns, {hook.id: hook.name})
    assert built.columns.tolist() == stored.columns.tolist()
    for name in ("id", "occurred", "received", "resource.team", "related.owner", "webhook_name"):
        assert built[name].tolist()[0] == stored[name].tolist()[0], name
    assert built["payload"].tolist() == stored["payload"].tolist()


def test_requests_frame(ws: hooklab.Workspace) -> None:
    hook = ws.create_webhook("models", TEMPLATE)
    ws.receive(hook.slug, post(model="a"))
    frame = ws.requests()
    row = frame.iloc[0]
    assert (row["method"], row["content_type"], row["body"], row["size"]) == (
        "POST", "application/x-www-form-urlencoded", "model=a", 7,
    )  # fmt: skip
    assert row["webhook_name"] == "models" and row["status"] == 204


def test_json_column_behaves_like_a_read_only_object_column() -> None:
    column = JSONArray.from_texts(['{"a": 1}', None, "[1, 2]", '{"b": {"c": 2}}'])
    frame = pd.DataFrame({"n": [1, 2, 3, 4], "value": column})
    assert str(frame["value"].dtype) == "json"
    assert frame["value"].tolist() == [{"a": 1}, None, [1, 2], {"b": {"c": 2}}]
    assert frame["value"].isna().tolist() == [False, True, False, False]
    assert frame[frame["n"] > 2]["value"].tolist() == [[1, 2], {"b": {"c": 2}}]
    assert frame.sort_values("n", ascending=False)["value"].iloc[0] == {"b": {"c": 2}}
    assert pd.concat([frame, frame])["value"].iloc[5] is None
    assert frame["value"].iloc[-1] == {"b": {"c": 2}}
    assert frame.head(1)["value"].tolist() == [{"a": 1}]
    assert frame["value"].map(lambda v: v is None).tolist() == [False, True, False, False]
    assert frame.to_json(orient="records").startswith('[{"n":1,"value":{"a":1}}')
    assert "{'a': 1}" in repr(frame)
    # Written out (to Arrow or Parquet), the column stays JSON text.
    assert pa.Table.from_pandas(frame).schema.field("value").type == pa.string()
    # Each read is a fresh value: changing it does not change the column.
    frame["value"].iloc[0]["a"] = 99
    assert frame["value"].iloc[0] == {"a": 1}


def test_json_column_take_with_missing_values() -> None:
    column = JSONArray.from_texts(['{"a": 1}', "[2]"])
    assert column.take([1, -1, 0], allow_fill=True).tolist() == [[2], None, {"a": 1}]
    assert column.take([-1, 0]).tolist() == [[2], {"a": 1}]
    with pytest.raises(IndexError):
        column.take([5])
    assert list(JSONArray._from_sequence([{"x": [1]}, None])) == [{"x": [1]}, None]


def test_events_load_after_the_working_directory_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    ws = hooklab.Workspace("relative/hooklab.db")
    hook = ws.create_webhook("models", TEMPLATE)
    ws.receive(hook.slug, post(model="a"))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # as `%cd` in a notebook would
    assert ws.events()["resource.id"].tolist() == ["product.models.a"]
    assert not (elsewhere / "relative").exists()
    ws.close()
