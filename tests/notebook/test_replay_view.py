"""A replay in a notebook: its HTML view comes from the notebook layer (registered when the
extension loads), and a long replay shows the notebook's progress display, both without
`hooklab.history` knowing anything of IPython or widgets."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from IPython.core.interactiveshell import InteractiveShell

import hooklab
import hooklab.history.replay as replay_module
from hooklab.core.request import HookRequest
from hooklab.notebook.magics import HooklabMagics

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


def test_the_notebook_layer_supplies_the_progress_display_of_long_replays(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from hooklab.notebook import widgets

    opened: list[tuple[int, str]] = []

    def open_bar(total: int, description: str = "") -> None:
        opened.append((total, description))

    monkeypatch.setattr(widgets.NotebookProgress, "open", open_bar)
    requests = [HookRequest.fake(method="POST", form={"model": str(i)}) for i in range(1_000)]
    hooklab.replay(requests[:999], TEMPLATE)
    assert opened == []
    hooklab.replay(requests, TEMPLATE)
    assert opened == [(1_000, "replaying")]
    hooklab.replay(requests, TEMPLATE, progress=False)
    assert opened == [(1_000, "replaying")]
    assert replay_module._default_progress is not None
