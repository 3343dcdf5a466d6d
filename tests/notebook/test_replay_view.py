"""A replay in a notebook: its HTML view comes from the notebook layer (registered when the
extension loads), and a long replay shows the progress bar it is given, both without
`hooklab.history` knowing anything of IPython or widgets."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from IPython.core.interactiveshell import InteractiveShell

import hooklab
from hooklab.core.request import HookRequest
from hooklab.notebook.magics import HooklabMagics
from hooklab.notebook.progress import NotebookProgress, ProgressBar

TEMPLATE = '{"event": "e", "resource": {"prefect.resource.id": "{{ body.model }}"}}'


@pytest.fixture
def shell() -> Iterator[InteractiveShell]:
    ip = InteractiveShell.instance()
    ip.run_line_magic("load_ext", "hooklab")
    yield ip
    ip.run_line_magic("unload_ext", "hooklab")
    for magics in list(ip.configurables):
        if isinstance(magics, HooklabMagics):
            ip.configurables.remove(magics)
    InteractiveShell.clear_instance()


def test_a_replay_shows_as_html_once_the_extension_is_loaded(shell: InteractiveShell) -> None:
    requests = [
        HookRequest.fake(method="POST", form={"model": "a"}),
        HookRequest.fake(method="POST", json=[1]),
    ]
    result = hooklab.replay(requests, TEMPLATE)
    assert shell.display_formatter is not None
    shown, _ = shell.display_formatter.format(result)
    html = shown["text/html"]
    assert "2 requests replayed" in html and "Failures" in html and "Events" in html
    assert shown["text/plain"] == repr(result)


@pytest.fixture
def bars(monkeypatch: pytest.MonkeyPatch) -> list[NotebookProgress]:
    """The progress bars opened, as a kernel would show them (outside one, none opens)."""
    opened: list[NotebookProgress] = []

    def open_bar(total: int, description: str = "") -> NotebookProgress:
        opened.append(NotebookProgress(total, description))
        return opened[-1]

    monkeypatch.setattr(NotebookProgress, "open", open_bar)
    return opened


def posts(count: int) -> list[HookRequest]:
    return [HookRequest.fake(method="POST", form={"model": str(i)}) for i in range(count)]


def test_a_progress_bar_shows_long_replays_only_and_goes_when_each_ends(
    bars: list[NotebookProgress],
) -> None:
    hooklab.replay(posts(999), TEMPLATE, progress=ProgressBar())
    assert bars == []
    bar = ProgressBar()
    hooklab.replay(posts(1_000), TEMPLATE, progress=bar)
    hooklab.replay(posts(1_200), TEMPLATE, progress=bar)  # one bar each, in turn
    assert [(b.bar.description, b.bar.value, b.bar.max) for b in bars] == [
        ("replaying", 1_000, 1_000),
        ("replaying", 1_200, 1_200),
    ]
    assert all(b.bar.comm is None for b in bars)  # each closed: gone from the cell
    hooklab.replay(posts(1_000), TEMPLATE)  # no display given: none
    assert len(bars) == 2


def test_the_replay_magic_shows_its_progress(
    shell: InteractiveShell, bars: list[NotebookProgress], tmp_path: Path
) -> None:
    shell.run_line_magic("config", f"HooklabMagics.home = {str(tmp_path)!r}")
    ws = shell.run_line_magic("hooklab", "workspace")
    hook = ws.create_webhook("models", TEMPLATE)
    hooklab.replay(posts(1_000), hook, workspace=ws, save=True)  # captured, as if received
    result = shell.run_line_magic("hooklab", "replay models")
    assert len(result) == 1_000
    assert [(b.bar.value, b.bar.max) for b in bars] == [(1_000, 1_000)]
