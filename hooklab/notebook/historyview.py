"""A long history at a glance: its count, its first and last rows, read without the rest.

`%hooklab events` (and `requests`, `failures`) return the DataFrame itself up to `WHOLE_ROWS`
rows; past that, a `HistoryPreview` that shows what pandas would show of the whole frame (the
first and last rows, the count) at once, and loads the frame when `.frame` is read.
"""

from __future__ import annotations

from functools import cached_property
from html import escape
from typing import TYPE_CHECKING

from hooklab.store.filters import HistoryFilter

if TYPE_CHECKING:
    import pandas as pd

    from hooklab.workspace import Workspace

# Up to this many rows, the frame itself (it loads in well under a second).
WHOLE_ROWS = 100_000
# The first and the last this many rows are shown, as pandas shows a long frame.
SHOWN = 5


def history_view(
    workspace: Workspace,
    kind: str,
    where: HistoryFilter,
    *,
    flatten: bool = False,
    limit: int | None = None,
) -> pd.DataFrame | HistoryPreview:
    """The events or requests (`kind`) a filter selects: the frame, or past `WHOLE_ROWS` rows
    a preview of it. With a `limit`, the frame of that many most recent: the size was asked."""
    if limit is not None:
        return _frame(workspace, kind, where, flatten, limit)
    count = workspace.history_count(kind, where)
    if count <= WHOLE_ROWS:
        return _frame(workspace, kind, where, flatten)
    return HistoryPreview(workspace, kind, where, count, flatten=flatten)


def _frame(
    workspace: Workspace, kind: str, where: HistoryFilter, flatten: bool, limit: int | None = None
) -> pd.DataFrame:
    if kind == "events":
        return workspace.events(where, flatten=flatten, limit=limit)
    return workspace.requests(where, limit=limit)


class HistoryPreview:
    """The count and the first and last rows of a long history; `.frame` is all of it."""

    def __init__(
        self,
        workspace: Workspace,
        kind: str,
        where: HistoryFilter,
        count: int,
        *,
        flatten: bool = False,
    ) -> None:
        import pandas as pd

        from hooklab.store.frames import flatten_payload_columns, frame_of

        self.workspace = workspace
        self.kind = kind
        self.where = where
        self.count = count
        self.flatten = flatten
        ends = []
        for oldest in (True, False):
            _, batches = workspace.history_batches(kind, where, limit=SHOWN, oldest=oldest)
            end = frame_of(batches.read_all())
            ends.append(flatten_payload_columns(end) if flatten else end)
        first, last = ends
        first.index = pd.RangeIndex(len(first))
        last.index = pd.RangeIndex(count - len(last), count)
        self.rows = pd.concat([first, last])

    def __len__(self) -> int:
        return self.count

    @cached_property
    def frame(self) -> pd.DataFrame:
        """Every row, as `Workspace.events()` or `.requests()` gives them."""
        return _frame(self.workspace, self.kind, self.where, self.flatten)

    def _note(self) -> str:
        return (
            f"{self.count:,} {self.kind}: the first and last {SHOWN} shown; `.frame` loads "
            f"them all (or `Workspace.{self.kind}_arrow()`, an Arrow table)"
        )

    def __repr__(self) -> str:
        import pandas as pd

        columns = pd.get_option("display.max_columns")
        shown = self.rows.to_string(max_cols=columns, show_dimensions=False)
        return f"{shown}\n\n{self._note()}"

    def _repr_html_(self) -> str:
        import pandas as pd

        columns = pd.get_option("display.max_columns")
        html = self.rows.to_html(max_cols=columns, show_dimensions=False)
        return f"{html}<p>{escape(self._note())}</p>"
