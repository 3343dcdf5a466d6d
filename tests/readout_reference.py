"""The history readers hooklab had before the Arrow readout: the reference that
tests/store/test_readout_same_answers.py compares the new reader with, and its comparison."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from hooklab.core.request import Headers, media_type
from hooklab.store.contract import Store, StoredRequest
from hooklab.store.filters import EVERYTHING, HistoryFilter
from hooklab.store.frames import events_frame
from hooklab.store.values import flatten_paths, is_missing


def names(store: Store) -> dict[str, str]:
    return {hook.id: hook.name for hook in store.webhooks()}


def old_events(store: Store, where: HistoryFilter = EVERYTHING) -> pd.DataFrame:
    """Rows read by sqlite3, then built into columns in Python, chunk by chunk."""
    columns, rows = store.iter_event_rows(where)
    return events_frame(columns, rows, names(store))


def old_requests(store: Store, where: HistoryFilter = EVERYTHING) -> pd.DataFrame:
    """One `StoredRequest` per row, then a frame of Python lists."""
    records: Sequence[StoredRequest] = store.request_records(where)
    webhook_names = names(store)
    headers = [Headers(r.request.headers) for r in records]
    return pd.DataFrame(
        {
            "id": [r.request.id for r in records],
            "received": pd.Series(
                pd.to_datetime([r.request.received for r in records], utc=True),
                dtype="datetime64[us, UTC]",
            ),
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


def old_flatten(frame: pd.DataFrame) -> pd.DataFrame:
    """`payload` spread into `payload.<path>` columns by a loop over the rows."""
    flat: dict[str, list[Any]] = {}
    payloads = list(frame["payload"])
    for row, payload in enumerate(payloads):
        for path, value in flatten_paths(payload, "payload"):
            flat.setdefault(path, [None] * len(payloads))[row] = value
    position = frame.columns.get_loc("payload")
    assert isinstance(position, int)
    spread = pd.DataFrame(flat, index=frame.index)
    return pd.concat([frame.iloc[:, :position], spread, frame.iloc[:, position + 1 :]], axis=1)


def plain(value: Any) -> Any:
    """A cell as a plain Python value: gaps as None, Arrow and numpy values as Python's."""
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):
        return plain(value.tolist())
    if not isinstance(value, (list, dict)) and is_missing(value):
        return None
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    return value


def differences(new: pd.DataFrame, old: pd.DataFrame) -> list[str]:
    """Where two frames hold different values (after `plain`), at most 20, as text."""
    found = []
    if new.columns.tolist() != old.columns.tolist():
        return [f"columns: {new.columns.tolist()} != {old.columns.tolist()}"]
    if len(new) != len(old):
        return [f"rows: {len(new)} != {len(old)}"]
    for name in new.columns:
        for row, (a, b) in enumerate(zip(new[name].tolist(), old[name].tolist(), strict=True)):
            if plain(a) != plain(b):
                found.append(f"{name}[{row}]: {plain(a)!r:.200} != {plain(b)!r:.200}")
                if len(found) >= 20:
                    return found
    return found
