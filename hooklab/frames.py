"""Events and requests as pandas DataFrames, one row each, built column by column."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import pandas as pd

from hooklab.request import Headers, media_type
from hooklab.store import StoredRequest

RESOURCE_ID = "prefect.resource.id"
RESOURCE_NAME = "prefect.resource.name"
RESOURCE_ROLE = "prefect.resource.role"


def events_frame(
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    webhook_names: dict[str, str],
    *,
    flatten_payload: bool = False,
) -> pd.DataFrame:
    """One row per stored event.

    Columns: `id`, `occurred`, `received`, `event`, `resource.id`, `resource.name`, one
    `resource.<label>` per other label, `related` (a list of dicts), `related.<role>` (the id of
    the first related resource in that role), `payload` (a dict, or `payload.<path>` columns when
    `flatten_payload`), `webhook_id`, `webhook_name`, `request_id`, `failed`, `error`.
    """
    index = {name: i for i, name in enumerate(columns)}
    resources = [json.loads(row[index["resource"]]) for row in rows]
    related = [json.loads(row[index["related"]]) for row in rows]
    payloads = [json.loads(row[index["payload"]]) for row in rows]
    webhook_ids = [row[index["webhook_id"]] for row in rows]

    data: dict[str, Any] = {
        "id": [row[index["id"]] for row in rows],
        "occurred": _times([row[index["occurred"]] for row in rows]),
        "received": _times([row[index["received"]] for row in rows]),
        "event": [row[index["event"]] for row in rows],
        "resource.id": [r.get(RESOURCE_ID) for r in resources],
        "resource.name": [r.get(RESOURCE_NAME) for r in resources],
    }
    for label in _ordered_keys(resources, skip={RESOURCE_ID, RESOURCE_NAME}):
        data[f"resource.{label}"] = [r.get(label) for r in resources]
    data["related"] = related
    for role in _ordered_roles(related):
        data[f"related.{role}"] = [_first_in_role(items, role) for items in related]
    if flatten_payload:
        flat = pd.json_normalize(payloads, sep=".") if payloads else pd.DataFrame()
        for name in flat.columns:
            data[f"payload.{name}"] = flat[name].tolist()
    else:
        data["payload"] = payloads
    data["webhook_id"] = webhook_ids
    data["webhook_name"] = [webhook_names.get(w) if w else None for w in webhook_ids]
    data["request_id"] = [row[index["request_id"]] for row in rows]
    data["failed"] = pd.array([bool(row[index["failed"]]) for row in rows], dtype="bool")
    data["error"] = [row[index["error"]] for row in rows]
    return pd.DataFrame(data)


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


def _ordered_keys(mappings: Sequence[dict[str, Any]], skip: set[str]) -> list[str]:
    seen: dict[str, None] = {}
    for mapping in mappings:
        for key in mapping:
            if key not in skip:
                seen.setdefault(key, None)
    return list(seen)


def _ordered_roles(related: Sequence[list[dict[str, str]]]) -> list[str]:
    seen: dict[str, None] = {}
    for items in related:
        for item in items:
            seen.setdefault(item.get(RESOURCE_ROLE, ""), None)
    return [role for role in seen if role]


def _first_in_role(items: list[dict[str, str]], role: str) -> str | None:
    for item in items:
        if item.get(RESOURCE_ROLE) == role:
            return item.get(RESOURCE_ID)
    return None
