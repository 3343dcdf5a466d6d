"""Events and requests as pandas DataFrames, one row each, built column by column."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np
import pandas as pd

try:
    import pyarrow as pa
except ImportError:  # optional: without it, text and JSON columns hold Python objects
    pa = None

from hooklab.core.request import Headers, media_type
from hooklab.store.contract import StoredRequest
from hooklab.store.values import flatten_paths

RESOURCE_ID = "prefect.resource.id"
RESOURCE_NAME = "prefect.resource.name"
RESOURCE_ROLE = "prefect.resource.role"
# Rows are turned into columns this many at a time, so raw rows never pile up in memory.
CHUNK_ROWS = 50_000
_STR = pd.Series([""]).dtype  # pandas' own string dtype (Arrow-backed where pyarrow is present)


def events_frame(
    columns: Sequence[str],
    rows: Iterable[Sequence[Any]],
    webhook_names: dict[str, str],
    *,
    flatten_payload: bool = False,
) -> pd.DataFrame:
    """One row per stored event.

    Columns: `id`, `occurred`, `received`, `event`, `resource.id`, `resource.name`, one
    `resource.<label>` per other label, `related` (a list of dicts), `related.<role>` (the id of
    the first related resource in that role), `payload` (a dict, or `payload.<path>` columns when
    `flatten_payload`), `webhook_id`, `webhook_name`, `request_id`, `failed`, `error`.

    `rows` may be an iterator; it is read `CHUNK_ROWS` at a time. `related` and `payload` keep
    their stored JSON text and are parsed when a cell is read (a `JSONArray`), which keeps a
    million events well under 2 GB.
    """
    builder = _StoredEvents(columns, webhook_names)
    iterator = iter(rows)
    while chunk := list(itertools.islice(iterator, CHUNK_ROWS)):
        builder.add(chunk)
    frame = builder.frame()
    return flatten_payload_columns(frame) if flatten_payload else frame


@dataclass
class EventColumns:
    """Events as parallel lists of Python values, as a replay makes them."""

    id: list[str] = field(default_factory=list)
    occurred: list[Any] = field(default_factory=list)
    received: list[Any] = field(default_factory=list)
    event: list[str] = field(default_factory=list)
    resource: list[dict[str, str]] = field(default_factory=list)
    related: list[list[dict[str, str]]] = field(default_factory=list)
    payload: list[dict[str, Any]] = field(default_factory=list)
    webhook_id: list[str | None] = field(default_factory=list)
    request_id: list[str | None] = field(default_factory=list)
    failed: list[bool] = field(default_factory=list)
    error: list[str | None] = field(default_factory=list)

    def append(
        self,
        id: str,
        occurred: Any,
        received: Any,
        event: str,
        resource: dict[str, str],
        related: list[dict[str, str]],
        payload: dict[str, Any],
        webhook_id: str | None,
        request_id: str | None,
        failed: bool,
        error: str | None,
    ) -> None:
        self.id.append(id)
        self.occurred.append(occurred)
        self.received.append(received)
        self.event.append(event)
        self.resource.append(resource)
        self.related.append(related)
        self.payload.append(payload)
        self.webhook_id.append(webhook_id)
        self.request_id.append(request_id)
        self.failed.append(failed)
        self.error.append(error)


def events_from_columns(
    events: EventColumns, webhook_names: dict[str, str], *, flatten_payload: bool = False
) -> pd.DataFrame:
    """The frame of `events_frame`, from values already in memory (`related` and `payload`
    are plain object columns of the lists and dicts given)."""
    labels = _label_columns(events.resource, skip={RESOURCE_ID, RESOURCE_NAME})
    roles = _role_columns(events.related)
    frame = _assemble(
        {
            "id": _strings(events.id),
            "occurred": _times(events.occurred),
            "received": _times(events.received),
            "event": _strings(events.event),
            "resource.id": _strings([r.get(RESOURCE_ID) for r in events.resource]),
            "resource.name": _strings([r.get(RESOURCE_NAME) for r in events.resource]),
        },
        {label: _strings(values) for label, values in labels.items()},
        _objects(events.related),
        {role: _strings(values) for role, values in roles.items()},
        _objects(events.payload),
        {
            "webhook_id": _strings(events.webhook_id),
            "webhook_name": _strings(
                [webhook_names.get(w) if w else None for w in events.webhook_id]
            ),
            "request_id": _strings(events.request_id),
            "failed": np.asarray(events.failed, dtype=bool),
            "error": _strings(events.error),
        },
    )
    return flatten_payload_columns(frame) if flatten_payload else frame


def frame_of(table: pa.Table) -> pd.DataFrame:
    """An events or requests frame of an Arrow table read from the store (`store.readout`):
    its JSON columns read as the values they hold (`JSONArray`), every other column as pandas
    has it (text as pandas' Arrow-backed strings, times as UTC timestamps)."""
    from hooklab.store.arrowpool import system_memory
    from hooklab.store.readout import JSON_COLUMNS

    with system_memory():  # as the read was
        return _frame_of(table, JSON_COLUMNS)


def _frame_of(table: pa.Table, json_columns: frozenset[str]) -> pd.DataFrame:
    from hooklab.store.jsoncolumn import HeaderPairs, JSONArray

    names = table.column_names
    texts = {
        name: (HeaderPairs if name == "headers" else JSONArray)(table.column(name))
        for name in names
        if name in json_columns
    }
    rest = table.drop_columns(list(texts))
    frame: pd.DataFrame = rest.to_pandas(split_blocks=True, self_destruct=True)
    for name, column in texts.items():
        frame.insert(names.index(name), name, pd.Series(column, index=frame.index))
    return frame


def flatten_payload_columns(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame with `payload` spread into `payload.<path>` columns (nested objects joined
    with dots, lists kept whole), in the place `payload` had.

    Payloads kept as JSON text are parsed by Arrow's JSON reader, many at a time; payloads
    whose fields change type from one event to the next (GitHub's `created_at`, a number in
    `push` events and text elsewhere), which no Arrow column can hold, are spread in Python.
    """
    if "payload" not in frame.columns:
        return frame
    from hooklab.store.jsoncolumn import JSONArray

    column = frame["payload"].array
    if isinstance(column, JSONArray):
        from hooklab.store.jsonspread import spread

        spread_frame = spread(column.texts, "payload", frame.index)
        if spread_frame is not None:
            return _in_place_of_payload(frame, spread_frame)
    flat: dict[str, list[Any]] = {}
    payloads = list(frame["payload"])
    for row, payload in enumerate(payloads):
        for path, value in flatten_paths(payload if isinstance(payload, dict) else {}, "payload"):
            column = flat.get(path)
            if column is None:
                column = flat[path] = [None] * len(payloads)
            column[row] = value
    return _in_place_of_payload(frame, pd.DataFrame(flat, index=frame.index))


def _in_place_of_payload(frame: pd.DataFrame, spread: pd.DataFrame) -> pd.DataFrame:
    position = cast(int, frame.columns.get_loc("payload"))  # column names are unique
    before, after = frame.iloc[:, :position], frame.iloc[:, position + 1 :]
    return pd.concat([before, spread, after], axis=1)


class _StoredEvents:
    """Builds an events frame from stored rows, chunk by chunk, into Arrow-backed columns."""

    def __init__(self, columns: Sequence[str], webhook_names: dict[str, str]) -> None:
        self.index = {name: i for i, name in enumerate(columns)}
        self.names = webhook_names
        self.sizes: list[int] = []
        self.strings: dict[str, list[Any]] = {
            name: []
            for name in ("id", "event", "webhook_id", "webhook_name", "request_id", "error")
        }
        self.times: dict[str, list[np.ndarray]] = {"occurred": [], "received": []}
        self.labels: dict[str, dict[int, Any]] = {}
        self.roles: dict[str, dict[int, Any]] = {}
        self.related: list[Any] = []
        self.payload: list[Any] = []
        self.failed: list[np.ndarray] = []
        # Most events of a webhook share the same `related` text: read each text once.
        self._roles_of: dict[str, dict[str, str]] = {}

    def add(self, rows: list[Sequence[Any]]) -> None:
        number = len(self.sizes)
        self.sizes.append(len(rows))

        def column(name: str) -> list[Any]:
            i = self.index[name]
            return [row[i] for row in rows]

        for name in ("id", "event", "webhook_id", "request_id", "error"):
            self.strings[name].append(_text_chunk(column(name)))
        hooks = column("webhook_id")
        names = [self.names.get(w) if w else None for w in hooks]
        self.strings["webhook_name"].append(_text_chunk(names))
        for name in ("occurred", "received"):
            self.times[name].append(_times(column(name)).to_numpy(dtype="datetime64[us]"))
        # One json.loads for the chunk: the parser then shares the label strings between rows.
        resources = json.loads("[" + ",".join(column("resource")) + "]")
        for label, values in _label_columns(resources, skip=set()).items():
            self.labels.setdefault(label, {})[number] = _text_chunk(values)
        related = column("related")
        roles = [self._roles(text) for text in related]
        for role in _ordered({role: None for r in roles for role in r}):
            values = [r.get(role) for r in roles]
            self.roles.setdefault(role, {})[number] = _text_chunk(values)
        self.related.append(_text_chunk(related))
        self.payload.append(_text_chunk(column("payload")))
        self.failed.append(np.fromiter((bool(v) for v in column("failed")), bool, len(rows)))

    def _roles(self, text: str) -> dict[str, str]:
        roles = self._roles_of.get(text)
        if roles is None:
            if len(self._roles_of) > 100_000:
                self._roles_of.clear()
            roles = {}
            for item in json.loads(text):
                role = item.get(RESOURCE_ROLE)
                if role and role not in roles:
                    roles[role] = item.get(RESOURCE_ID)
            self._roles_of[text] = roles
        return roles

    def _strings(self, chunks: list[Any]) -> Any:
        return _text_column(chunks)

    def _sparse(self, chunks: dict[int, Any]) -> Any:
        filled = [
            chunks[i] if i in chunks else _text_chunk([None] * size)
            for i, size in enumerate(self.sizes)
        ]
        return self._strings(filled)

    def frame(self) -> pd.DataFrame:
        labels = {label: self._sparse(chunks) for label, chunks in self.labels.items()}
        first = {
            "id": self._strings(self.strings["id"]),
            "occurred": _concat_times(self.times["occurred"]),
            "received": _concat_times(self.times["received"]),
            "event": self._strings(self.strings["event"]),
            "resource.id": labels.pop(RESOURCE_ID, None),
            "resource.name": labels.pop(RESOURCE_NAME, None),
        }
        for name in ("resource.id", "resource.name"):
            if first[name] is None:
                first[name] = self._sparse({})
        return _assemble(
            first,
            labels,
            _json_column(self.related),
            {role: self._sparse(chunks) for role, chunks in self.roles.items()},
            _json_column(self.payload),
            {
                "webhook_id": self._strings(self.strings["webhook_id"]),
                "webhook_name": self._strings(self.strings["webhook_name"]),
                "request_id": self._strings(self.strings["request_id"]),
                "failed": np.concatenate(self.failed) if self.failed else np.array([], bool),
                "error": self._strings(self.strings["error"]),
            },
        )


def _assemble(
    first: dict[str, Any],
    labels: dict[str, Any],
    related: Any,
    roles: dict[str, Any],
    payload: Any,
    last: dict[str, Any],
) -> pd.DataFrame:
    """The columns of an events frame, in their documented order."""
    from hooklab.store.resources import free_name

    data: dict[str, Any] = dict(first)
    taken = {"resource.id", "resource.name"}  # a label named so takes resource.id.1, ...
    data.update({free_name(f"resource.{label}", taken): values for label, values in labels.items()})
    data["related"] = related
    data.update({f"related.{role}": values for role, values in roles.items()})
    data["payload"] = payload
    data.update(last)
    return pd.DataFrame(data)


def _strings(values: list[Any]) -> Any:
    """A string column (None is missing), typed as pandas types text, without inference."""
    if pa is None:
        return values
    try:
        return pd.array(pa.array(values, type=pa.string()), dtype=_STR)
    except (pa.ArrowTypeError, pa.ArrowInvalid):
        return values  # not all text: let pandas decide


def _text_chunk(values: list[Any]) -> Any:
    """One chunk of a text column: Arrow strings, or the values themselves without pyarrow."""
    return pa.array(values, type=pa.string()) if pa is not None else values


def _text_column(chunks: list[Any]) -> Any:
    if pa is not None:
        return pd.array(pa.chunked_array(chunks, type=pa.string()), dtype=_STR)
    return [value for chunk in chunks for value in chunk]


def _json_column(chunks: list[Any]) -> Any:
    """Stored JSON text read as Python values: parsed when a cell is read (with pyarrow), or
    all at once (without)."""
    if pa is not None:
        from hooklab.store.jsoncolumn import JSONArray

        return JSONArray(pa.chunked_array(chunks, type=pa.string()))
    return _objects([None if text is None else json.loads(text) for c in chunks for text in c])


def _objects(values: list[Any]) -> np.ndarray:
    array = np.empty(len(values), dtype=object)
    for index, value in enumerate(values):
        array[index] = value  # one by one: a list of lists must stay one-dimensional
    return array


def _label_columns(resources: Sequence[dict[str, Any]], skip: set[str]) -> dict[str, list[Any]]:
    """Each label (in order of first appearance) as a column, None where a resource lacks it."""
    labels = [
        key for key in dict.fromkeys(itertools.chain.from_iterable(resources)) if key not in skip
    ]
    return {label: [r.get(label) for r in resources] for label in labels}


def _role_columns(related: Sequence[list[dict[str, str]]]) -> dict[str, list[str | None]]:
    """Per role (in order of first appearance), the id of each event's first resource in it."""
    if all(len(items) == 1 for items in related):  # often: only the webhook itself
        only = [items[0] for items in related]
        roles = _ordered(dict.fromkeys(item.get(RESOURCE_ROLE) for item in only))
        return {
            role: [
                item.get(RESOURCE_ID) if item.get(RESOURCE_ROLE) == role else None for item in only
            ]
            for role in roles
        }
    # Read backwards, so that the first resource in a role is the one that stays.
    by_role = [
        {item.get(RESOURCE_ROLE): item.get(RESOURCE_ID) for item in reversed(items)}
        for items in related
    ]
    roles = _ordered(dict.fromkeys(itertools.chain.from_iterable(map(reversed, by_role))))
    return {role: [ids.get(role) for ids in by_role] for role in roles}


def _ordered(keys: dict[Any, None]) -> list[str]:
    return [key for key in keys if key]


def requests_frame(records: Sequence[StoredRequest], webhook_names: dict[str, str]) -> pd.DataFrame:
    """One row per stored request: what arrived, and the status it got."""
    headers = [Headers(r.request.headers) for r in records]
    return pd.DataFrame(
        {
            "id": [r.request.id for r in records],
            "received": _times([r.request.received for r in records]),
            "webhook_id": [r.webhook_id for r in records],
            "webhook_name": [webhook_names.get(r.webhook_id or "") for r in records],
            "method": [r.request.method for r in records],
            "path": [r.request.path for r in records],
            "query": [r.request.query for r in records],
            "content_type": [media_type(h.get("content-type")) for h in headers],
            "headers": [h.to_dict() for h in headers],
            "body": [r.request.body_text() for r in records],
            "size": [len(r.request.body) for r in records],
            "client": [r.request.client for r in records],
            "status": pd.array([r.status for r in records], dtype="int64"),
            "error": [r.error for r in records],
        }
    )


def _times(values: Sequence[Any]) -> pd.Series:
    return pd.Series(
        pd.to_datetime(list(values), utc=True, format="ISO8601"), dtype="datetime64[us, UTC]"
    )


def _concat_times(chunks: list[np.ndarray]) -> pd.Series:
    values = np.concatenate(chunks) if chunks else np.array([], dtype="datetime64[us]")
    return pd.Series(pd.DatetimeIndex(values).tz_localize("UTC"), dtype="datetime64[us, UTC]")
