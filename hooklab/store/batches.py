"""Events as Prefect takes them, in batches: the JSON of a stored event, and the key of a
destination. Both outboxes, the backfill and the replay's forwarding build on these."""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Sequence
from typing import Any, NamedTuple

from hooklab.core.errors import InvalidInput
from hooklab.core.times import iso
from hooklab.store.contract import OutboxBatch

__all__ = ["PREFECT_COLUMNS", "destination_url", "outbox_batch", "prefect_event_json"]


class PrefectRow(NamedTuple):
    """The columns of a stored event that make Prefect's event (`prefect_event_json`'s
    arguments after `seq`); times are ISO text in SQLite, datetimes in PostgreSQL."""

    seq: int
    id: str
    occurred: Any
    event: str
    resource: str  # JSON text, as stored
    related: str
    payload: str
    follows: str | None


PREFECT_COLUMNS = ", ".join(PrefectRow._fields)


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
    times: list[str] = []
    size, last = 0, 0
    # The forwarder's loop, a row at a time: unpacked into names in PrefectRow's order, which
    # costs no more than reading a tuple by position (a PrefectRow made per row would).
    for seq, id, occurred, event, resource, related, payload, follows in rows:
        if not isinstance(occurred, str):
            occurred = iso(occurred)
        text = prefect_event_json(id, occurred, event, resource, related, payload, follows)
        if texts and size + len(text) > max_bytes:
            break
        texts.append(text)
        ids.append(str(id))
        times.append(occurred)
        size, last = size + len(text), int(seq)
    return OutboxBatch(texts, ids, last, (min(times), max(times))) if texts else None
