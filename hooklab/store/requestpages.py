"""Stored requests read in batches, oldest first, each batch a query of its own: a replay of a
long history holds one batch at a time, not the whole history.

Both stores read this way, with their own placeholder: the filter's conditions, then `seq`
after the last batch's. The requests are fixed when reading starts (no later than the newest
`seq` then), so a receiver that stores more meanwhile changes neither the count nor the batches.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

from hooklab.store.contract import StoredRequest
from hooklab.store.rows import REQUEST_COLUMNS, stored_request, where_sql

Query = Callable[[str, Sequence[Any]], list[tuple[Any, ...]]]

DEFAULT_BATCH = 2_000


def request_pages(
    query: Query,
    clauses: Sequence[str],
    params: Sequence[Any],
    *,
    mark: str,
    limit: int | None = None,
    batch: int = DEFAULT_BATCH,
) -> tuple[int, Iterator[list[StoredRequest]]]:
    """How many requests the conditions select (the `limit` most recent, when given), and
    those requests in batches of at most `batch`, oldest first."""
    if batch < 1:
        raise ValueError("batch must be at least 1")
    clauses, params = list(clauses), list(params)
    if limit is not None:
        sql = (
            f"SELECT seq FROM requests{where_sql(clauses)} ORDER BY seq DESC LIMIT 1 OFFSET {mark}"
        )
        first = query(sql, [*params, max(int(limit), 1) - 1])
        if first:
            clauses.append(f"seq >= {mark}")
            params.append(first[0][0])
    count, last = query(f"SELECT count(*), max(seq) FROM requests{where_sql(clauses)}", params)[0]
    if not count:
        return 0, iter(())
    clauses.append(f"seq <= {mark}")
    params.append(last)
    return int(count), _pages(query, clauses, params, mark, batch)


def _pages(
    query: Query, clauses: list[str], params: list[Any], mark: str, batch: int
) -> Iterator[list[StoredRequest]]:
    after = None
    while True:
        more: list[str] = [] if after is None else [f"seq > {mark}"]
        sql = (
            f"SELECT seq, {REQUEST_COLUMNS} FROM requests{where_sql([*clauses, *more])}"
            f" ORDER BY seq LIMIT {int(batch)}"
        )
        rows = query(sql, params if after is None else [*params, after])
        if not rows:
            return
        after = rows[-1][0]
        yield [stored_request(row[1:]) for row in rows]
        if len(rows) < batch:
            return
