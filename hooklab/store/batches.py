"""Events as Prefect takes them, in batches: the JSON of a stored event, and the key of a
destination. Both outboxes, the backfill and the replay's forwarding build on these."""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Sequence
from typing import Any

from hooklab.core.errors import InvalidInput
from hooklab.core.times import iso
from hooklab.store.contract import OutboxBatch

__all__ = ["PREFECT_COLUMNS", "destination_url", "outbox_batch", "prefect_event_json"]

# The columns of a stored event that make Prefect's event, in the order of `prefect_event_json`.
PREFECT_COLUMNS = "seq, id, occurred, event, resource, related, payload, follows"


def destination_url(url: str) -> str:
    """A Prefect API URL, checked, without a trailing slash and without any user:password in
    it: the key of a destination, which is stored.

    >>> destination_url("http://user:secret@127.0.0.1:4200/api/")
    'http://127.0.0.1:4200/api'
    """
    parts = urllib.parse.urlsplit(url.strip())
    host = parts.netloc.rpartition("@")[2]  # a user:password never becomes part of the key
    if parts.scheme not in ("http", "https") or not host:
        shown = urllib.parse.urlunsplit(parts._replace(netloc=host))
        raise InvalidInput(
            f"not a Prefect API URL: {shown!r} (e.g. http://127.0.0.1:4200/api, or "
            "https://api.prefect.cloud/api/accounts/<account>/workspaces/<workspace>)"
        )
    return urllib.parse.urlunsplit((parts.scheme, host, parts.path.rstrip("/"), "", ""))


def prefect_event_json(
    id: str,
    occurred: str,
    event: str,
    resource: str,
    related: str,
    payload: str,
    follows: str | None,
) -> str:
    """Prefect's event JSON from a stored event's columns. `resource`, `related` and `payload`
    are stored as JSON text already, so they are joined in as they are: the event Prefect gets
    is the event hooklab stored, unchanged."""
    return (
        f'{{"id":"{id}","occurred":"{occurred}","event":{json.dumps(event)},'
        f'"resource":{resource},"related":{related},"payload":{payload},'
        f'"follows":{"null" if follows is None else json.dumps(follows)}}}'
    )


def outbox_batch(rows: Sequence[Sequence[Any]], max_bytes: int) -> OutboxBatch | None:
    """Rows of PREFECT_COLUMNS as a batch: all of them, or as many as fit `max_bytes` (one
    at least). Times may be ISO text or datetimes."""
    texts: list[str] = []
    ids: list[str] = []
    occurred: list[str] = []
    size, last = 0, 0
    for row in rows:
        text = prefect_event_json(*row[1:]) if isinstance(row[2], str) else _from_datetime(row)
        if texts and size + len(text) > max_bytes:
            break
        texts.append(text)
        ids.append(str(row[1]))
        occurred.append(row[2] if isinstance(row[2], str) else iso(row[2]))
        size, last = size + len(text), int(row[0])
    return OutboxBatch(texts, ids, last, (min(occurred), max(occurred))) if texts else None


def _from_datetime(row: Sequence[Any]) -> str:
    return prefect_event_json(row[1], iso(row[2]), *row[3:])
