"""The `hooklab` command line: `hooklab webhook ...` as `prefect cloud webhook ...`, and more."""

from __future__ import annotations

import sys

TYPE_CHECKING = False  # not typing's: `hooklab --version` imports as little as it can
if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the `hooklab` command; returns its exit status (0 ok, 1 failed, 2 bad arguments).

    `hooklab --version` is answered here, before the commands (and with them the workspace,
    the server and the Prefect bridge) are imported: it costs little more than Python's start.
    """
    words = list(sys.argv[1:] if argv is None else argv)
    if words == ["--version"]:
        from hooklab._version import __version__

        print(f"hooklab {__version__}")
        return 0
    from hooklab.cli.app import main as run

    return run(words)
