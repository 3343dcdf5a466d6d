"""The Workspace's history: stored events and requests, as DataFrames or as objects."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from hooklab.core.times import Clock
from hooklab.store.contract import Store, StoredRequest
from hooklab.store.filters import HistoryFilter

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

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
        limit: int | None = None,
        flatten: bool = False,
    ) -> pd.DataFrame:
        """Stored events, failures included, one row each, oldest first.

        Takes a `HistoryFilter`, or its fields as arguments: a webhook's name, id or slug (or a
        deleted webhook's id), an event name, `since`/`until` as datetimes or text (`"1h"`,
        ISO 8601), failures only; `limit` keeps the most recent. `payload` and `related` read
        as dicts and lists (kept as JSON text until read); `flatten` spreads the payload into
        `payload.<path>` columns.
        """
        from hooklab.store.frames import flatten_payload_columns, frame_of

        where = self._history(webhook, event=event, since=since, until=until, failed=failed)
        frame = frame_of(self._table("events", where, limit))
        return flatten_payload_columns(frame) if flatten else frame

    def requests(
        self,
        webhook: str | HistoryFilter | None = None,
        *,
        event: str | None = None,
        since: Moment = None,
        until: Moment = None,
        failed: bool | None = None,
        limit: int | None = None,
    ) -> pd.DataFrame:
        """Stored requests, one row each, oldest first (Authorization is never stored).

        Filtered as `events` is; `event` and `failed` keep the requests that produced such
        events. `headers` read as dicts."""
        from hooklab.store.frames import frame_of

        where = self._history(webhook, event=event, since=since, until=until, failed=failed)
        return frame_of(self._table("requests", where, limit))

    def events_arrow(
        self,
        webhook: str | HistoryFilter | None = None,
        *,
        event: str | None = None,
        since: Moment = None,
        until: Moment = None,
        failed: bool | None = None,
        limit: int | None = None,
    ) -> pa.Table:
        """The events of `events` as an Arrow table (for polars, DuckDB, Parquet), filtered the
        same way; `related` and `payload` are JSON text."""
        where = self._history(webhook, event=event, since=since, until=until, failed=failed)
        return self._table("events", where, limit)

    def requests_arrow(
        self,
        webhook: str | HistoryFilter | None = None,
        *,
        event: str | None = None,
        since: Moment = None,
        until: Moment = None,
        failed: bool | None = None,
        limit: int | None = None,
    ) -> pa.Table:
        """The requests of `requests` as an Arrow table; `headers` are JSON text, the pairs as
        received."""
        where = self._history(webhook, event=event, since=since, until=until, failed=failed)
        return self._table("requests", where, limit)

    def history_batches(
        self,
        kind: str,
        where: HistoryFilter | None = None,
        *,
        limit: int | None = None,
        oldest: bool = False,
    ) -> tuple[int, pa.RecordBatchReader]:
        """How many `kind` ("events" or "requests") a filter selects, and a reader of them in
        Arrow batches: a history of any size, in memory that stays flat. `limit` keeps the
        most recent (with `oldest`, the oldest)."""
        from hooklab.store.readout import Reader, Reading

        reading = Reading(self._history(where), limit, oldest=oldest)
        return Reader.of(self.store).read(kind, reading)

    def history_count(self, kind: str, where: HistoryFilter | None = None) -> int:
        """How many `kind` ("events" or "requests") a filter selects, without reading them."""
        from hooklab.store.readout import Reader, Reading

        return Reader.of(self.store).count(kind, Reading(self._history(where)))

    def _table(self, kind: str, where: HistoryFilter, limit: int | None) -> pa.Table:
        from hooklab.store.readout import Reader, Reading

        return Reader.of(self.store).table(kind, Reading(where, limit))

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

    def captured_batches(
        self,
        webhook: str | HistoryFilter | None = None,
        *,
        since: Moment = None,
        until: Moment = None,
        limit: int | None = None,
        batch: int = 2_000,
    ) -> tuple[int, Iterator[list[StoredRequest]]]:
        """What `captured` gives (the `limit` most recent, when given), read a batch at a time:
        how many, and the batches, oldest first. A long history is replayed this way without
        holding it all."""
        where = self._history(webhook, since=since, until=until)
        return self.store.request_batches(where, limit=limit, batch=batch)

    def _history(self, webhook: str | HistoryFilter | None, **fields: Any) -> HistoryFilter:
        """The filter with its webhook reference resolved to the id the store keeps; ages
        (`since="1h"`) count back from this workspace's clock."""
        where = HistoryFilter.of(webhook, now=self.clock(), **fields)
        if where.webhook is None:
            return where
        return replace(where, webhook=self.resolve_webhook(where.webhook, deleted=True))

    def _webhook_names(self) -> dict[str, str]:
        return {hook.id: hook.name for hook in self.store.webhooks()}
