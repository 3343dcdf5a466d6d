"""`hooklab serve` with its SQLite write left out, for the receiver benchmark's `--unstored`.

Each request goes through what `hooklab serve` does (the HTTP server, the pipeline, the rows made
for the store, the group commit and the answer) except the write itself: the insert and its
commit. Nothing is kept, so this is never a way to run hooklab; it measures how much of the
receiver's distance from the bare handler is the durable write, and how much is the rest.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hooklab.server.serve import main
from hooklab.store.sqlite import SqliteStore


def _written_nowhere(self: SqliteStore, requests: list[Any], events: list[Any]) -> None:
    """The insert of a batch's rows, and its commit, left out."""


if __name__ == "__main__":
    SqliteStore._insert = _written_nowhere  # type: ignore[method-assign]
    sys.exit(main())
