"""A long history replayed through two templates a batch at a time, keeping only the diff's
counts (and its rows, when they are asked for): memory stays flat as the history grows.

`hooklab replay` reads this way. Each batch is replayed through both templates and compared
(a request's events never span two batches, so the batches' diffs are the whole diff), and then
dropped with its requests and events.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from hooklab.core.webhooks import Webhook
from hooklab.history.diffs import diff
from hooklab.history.replay import replay
from hooklab.store.contract import StoredRequest

if TYPE_CHECKING:
    import pandas as pd

    from hooklab.workspace import Workspace


@dataclass
class Tally:
    """How a template did over the history: requests replayed, and how many failed."""

    requests: int = 0
    failed: int = 0

    def summary(self) -> str:
        return (
            f"{self.requests} requests replayed: {self.requests - self.failed} produced events, "
            f"{self.failed} failed"
        )


@dataclass
class DiffTally:
    """The diff of two templates over the history, as counts: what `Diff.summary` says, and
    per field the requests it changed in. `rows` holds every difference when kept."""

    compared: int = 0
    unchanged: int = 0
    added: int = 0
    dropped: int = 0
    changed: int = 0
    changed_requests: int = 0
    per_field: Counter[str] = field(default_factory=Counter)
    rows: list[pd.DataFrame] | None = None

    def summary(self) -> str:
        return (
            f"{self.compared} requests compared: {self.unchanged} unchanged; "
            f"{self.added} events added, {self.dropped} dropped, "
            f"{self.changed} fields changed in {self.changed_requests} requests"
        )

    def fields(self) -> list[tuple[str, int]]:
        """Each changed field with the requests it changed in, most first (ties by name)."""
        return sorted(self.per_field.items(), key=lambda item: (-item[1], item[0]))

    def frame(self) -> pd.DataFrame:
        """Every difference, as `Diff.frame` has them (needs `rows` kept)."""
        import pandas as pd

        assert self.rows is not None, "the rows were not kept"
        columns = ["request_id", "change", "field", "old", "new"]
        if not self.rows:
            return pd.DataFrame([], columns=columns)
        return pd.concat(self.rows, ignore_index=True)


def replay_both(
    batches: Iterable[Sequence[StoredRequest]],
    total: int,
    current: Webhook,
    template: str,
    *,
    workspace: Workspace,
    keep_rows: bool = False,
    progress: Callable[[int, int], Any] | None = None,
) -> tuple[Tally, Tally, DiffTally]:
    """Replay each batch through the webhook's current template and through `template`, and
    diff them; returns both tallies and the diff's. `progress(done, total)` after each batch.

    Raises `TemplateError` before any replay when `template` does not compile."""
    from hooklab.core.templates import compile_template

    compile_template(template)
    old, new = Tally(), Tally()
    changes = DiffTally(rows=[] if keep_rows else None)
    done = 0
    for batch in batches:
        before = replay(batch, current, workspace=workspace, processes=1)
        after = replay(batch, template, workspace=workspace, processes=1)
        for tally, result in ((old, before), (new, after)):
            tally.requests += len(result)
            tally.failed += result.failed_count
        _add(changes, diff(before, after))
        done += len(batch)
        if progress is not None:
            progress(done, total)
    return old, new, changes


def _add(changes: DiffTally, found: Any) -> None:
    frame = found.frame
    changes.compared += found.compared
    changes.unchanged += found.unchanged
    kinds = frame["change"].value_counts()
    changes.added += int(kinds.get("added", 0))
    changes.dropped += int(kinds.get("dropped", 0))
    changed = frame[frame["change"] == "changed"]
    changes.changed += len(changed)
    changes.changed_requests += changed["request_id"].nunique()
    for name, count in changed.groupby("field")["request_id"].nunique().items():
        changes.per_field[str(name)] += int(count)
    if changes.rows is not None and len(frame):
        changes.rows.append(frame)
