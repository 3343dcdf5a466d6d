"""The Workspace's history: stored events and requests, as DataFrames or as objects."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from hooklab.core.times import Clock
from hooklab.store.contract import Store, StoredRequest
from hooklab.store.filters import HistoryFilter

if TYPE_CHECKING:
    import pandas as pd

Moment = datetime | str | None  # a time, or text for `parse_time` ("1h", ISO 8601)


class HistoryReads:
    """What the Workspace reads back from its store's history."""

    store: Store
    clock: Clock

    def resolve_webhook(self, ref: str, *, deleted: bool = False) -> str:
        raise NotImplementedError

    def events(
        self,
        webhook: str | HistoryFilter | None = None,
        *,
        event: str | None = None,
        since: Moment = None,
        until: Moment = None,
        failed: bool | None = None,
    ) -> pd.DataFrame:
        """Stored events, failures included, one row each, oldest first.

        Takes a `HistoryFilter`, or its fields as arguments: a webhook's name, id or slug (or a
        deleted webhook's id), an event name, `since`/`until` as datetimes or text (`"1h"`,
        ISO 8601), failures only. `payload` and `related` read as dicts and lists (kept as JSON
        text until read), so that a million events load in well under 2 GB.
        """
        from hooklab.store.frames import events_frame

        where = self._history(webhook, event=event, since=since, until=until, failed=failed)
        columns, rows = self.store.iter_event_rows(where)
        return events_frame(columns, rows, self._webhook_names())

    def requests(
        self,
        webhook: str | HistoryFilter | None = None,
        *,
        event: str | None = None,
        since: Moment = None,
        until: Moment = None,
        failed: bool | None = None,
    ) -> pd.DataFrame:
        """Stored requests, one row each, oldest first (Authorization is never stored).

        Filtered as `events` is; `event` and `failed` keep the requests that produced such
        events."""
        from hooklab.store.frames import requests_frame

        where = self._history(webhook, event=event, since=since, until=until, failed=failed)
        return requests_frame(self.store.request_records(where), self._webhook_names())

    def captured(
        self,
        webhook: str | HistoryFilter | None = None,
        *,
        since: Moment = None,
        until: Moment = None,
        ids: Sequence[str] | None = None,
    ) -> list[StoredRequest]:
        """Stored requests as objects, ready to replay; filtered as `requests` is."""
        where = self._history(webhook, since=since, until=until)
        return self.store.request_records(where, ids=ids)

    def _history(self, webhook: str | HistoryFilter | None, **fields: Any) -> HistoryFilter:
        """The filter with its webhook reference resolved to the id the store keeps; ages
        (`since="1h"`) count back from this workspace's clock."""
        where = HistoryFilter.of(webhook, now=self.clock(), **fields)
        if where.webhook is None:
            return where
        return replace(where, webhook=self.resolve_webhook(where.webhook, deleted=True))

    def _webhook_names(self) -> dict[str, str]:
        return {hook.id: hook.name for hook in self.store.webhooks()}
