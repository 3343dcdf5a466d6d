"""Jupyter: magics, widgets, HTML views, sending and deterministic mode."""

from hooklab.history.replay import Progress, show_progress_with


def _replay_progress(total: int) -> Progress | None:
    """A progress bar in the running cell for a long `hooklab.replay`; None outside a kernel."""
    from hooklab.notebook.widgets import NotebookProgress

    return NotebookProgress.open(total, "replaying")


show_progress_with(_replay_progress)
