"""A progress bar in the running cell, for long jobs such as a replay of many requests."""

from __future__ import annotations

from typing import TYPE_CHECKING

import ipywidgets as widgets

if TYPE_CHECKING:
    from IPython.display import DisplayHandle

__all__ = ["NotebookProgress", "ProgressBar", "in_kernel"]


def in_kernel() -> bool:
    """True inside a Jupyter kernel, where widgets can be shown."""
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython is a dependency
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


class NotebookProgress:
    """A progress bar shown in the notebook while a long job runs, then removed.

    When it closes, the widget is closed and its output replaced by nothing, so a saved
    notebook keeps no trace of it and nbval has nothing to compare.
    """

    def __init__(self, total: int, description: str = "") -> None:
        self.bar = widgets.IntProgress(value=0, min=0, max=max(total, 1), description=description)
        self._handle: DisplayHandle | None = None

    @classmethod
    def open(cls, total: int, description: str = "") -> NotebookProgress | None:
        """Show a bar in the current cell; None outside a kernel (scripts, the CLI)."""
        if not in_kernel():
            return None
        from IPython.display import display

        progress = cls(total, description)
        progress._handle = display(progress.bar, display_id=True)
        return progress

    def __call__(self, done: int, total: int) -> None:
        self.bar.max = max(total, 1)
        self.bar.value = done

    def close(self) -> None:
        self.bar.close()
        if self._handle is not None:
            self._handle.update({"text/plain": ""}, raw=True)
            self._handle = None

    def __repr__(self) -> str:
        return f"NotebookProgress({self.bar.value}/{self.bar.max})"


class ProgressBar:
    """A `progress=` for `hooklab.replay` (any `progress(done, total)`): a bar in the running
    cell for a job of at least `at_least` steps, removed when the job ends:
    `hooklab.replay(ws.captured("models"), template, progress=ProgressBar())`.

    Shorter jobs would only flicker, so they show nothing, and neither does anything outside
    a kernel. One ProgressBar serves several jobs in turn: each gets a bar of its own.
    """

    def __init__(self, description: str = "replaying", *, at_least: int = 1_000) -> None:
        self.description = description
        self.at_least = at_least
        self._bar: NotebookProgress | None = None
        self._started = False

    def __call__(self, done: int, total: int) -> None:
        if not self._started:
            self._started = True
            if total >= self.at_least:
                self._bar = NotebookProgress.open(total, self.description)
        if self._bar is not None:
            self._bar(done, total)
        if done >= total:
            self.close()

    def close(self) -> None:
        """Remove the bar; the next call starts a new job."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        self._started = False
