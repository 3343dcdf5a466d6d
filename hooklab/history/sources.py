"""What the history tools take as requests: HookRequests, stored requests, or a requests frame.

Replay and lint read them through `requests_with_webhooks`, so each accepts the same inputs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Union, cast

from hooklab.core.errors import InvalidInput
from hooklab.core.request import HookRequest
from hooklab.store.contract import StoredRequest

if TYPE_CHECKING:
    import pandas as pd

    from hooklab.workspace import Workspace

Requests = Union[HookRequest, StoredRequest, Sequence[HookRequest | StoredRequest], "pd.DataFrame"]


def requests_with_webhooks(
    requests: Requests, workspace: Workspace | None = None
) -> list[tuple[HookRequest, str | None]]:
    """Each request with the id of the webhook that captured it (None when not known).

    >>> [(r.method, w) for r, w in requests_with_webhooks([HookRequest.fake()])]
    [('GET', None)]
    """
    if isinstance(requests, (HookRequest, StoredRequest)):
        requests = [requests]
    if hasattr(requests, "columns"):  # a requests DataFrame
        return _from_frame(cast("pd.DataFrame", requests), workspace)
    pairs: list[tuple[HookRequest, str | None]] = []
    for item in requests:
        if isinstance(item, StoredRequest):
            pairs.append((item.request, item.webhook_id))
        elif isinstance(item, HookRequest):
            pairs.append((item, None))
        else:
            raise TypeError(f"cannot replay {type(item).__name__}: give HookRequests or a frame")
    return pairs


def _from_frame(
    frame: pd.DataFrame, workspace: Workspace | None
) -> list[tuple[HookRequest, str | None]]:
    """Requests of a `Workspace.requests()` frame: the stored bytes when the workspace has them."""
    if "body" not in frame.columns or "headers" not in frame.columns:
        raise InvalidInput(
            "replay() needs a requests frame (Workspace.requests()), not an events frame"
        )
    ids = [str(i) for i in frame["id"]]
    if workspace is not None:
        stored = {record.request.id: record for record in workspace.captured(ids=ids)}
        if len(stored) == len(set(ids)):
            return [(stored[i].request, stored[i].webhook_id) for i in ids]
    pairs = []
    row: Any  # a requests frame's row: its columns hold the stored fields
    for row in frame.itertuples(index=False):
        request = HookRequest(
            method=row.method,
            path=row.path,
            query=row.query,
            headers=tuple(dict(row.headers).items()),
            body=str(row.body).encode(),
            received=row.received.to_pydatetime(),
            client=row.client,
            id=str(row.id),
        )
        pairs.append((request, row.webhook_id if isinstance(row.webhook_id, str) else None))
    return pairs
