"""Where a command finds its store: the home folder, `$HOOKLAB_STORE`, or a URL given."""

from __future__ import annotations

import os
from pathlib import Path


def default_home() -> Path:
    """`$HOOKLAB_HOME`, or `~/.hooklab`."""
    return Path(os.environ.get("HOOKLAB_HOME") or Path.home() / ".hooklab").expanduser()


DATABASE = "hooklab.db"


def store_target(store: str | os.PathLike[str] | None, home: Path | None = None) -> str:
    """The store a command means: `store` when given, else `$HOOKLAB_STORE`, else the SQLite
    file in `home` (itself `$HOOKLAB_HOME`, else `~/.hooklab`)."""
    if store is not None and str(store):
        return str(store)
    return os.environ.get("HOOKLAB_STORE") or str((home or default_home()) / DATABASE)
