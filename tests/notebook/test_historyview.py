"""`%hooklab events` on a long history: the count and the first and last rows at once, the
rest only when asked for."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from IPython.core.interactiveshell import InteractiveShell

from hooklab.core.examples import DYNAMIC_TEMPLATE as SEED
from hooklab.core.request import HookRequest
from hooklab.notebook import historyview
from hooklab.notebook.historyview import HistoryPreview
from hooklab.notebook.magics import HooklabMagics
from hooklab.store import readout


@pytest.fixture
def shell(tmp_path: Path) -> Iterator[InteractiveShell]:
    ip = InteractiveShell.instance()
    ip.run_line_magic("load_ext", "hooklab")
    ip.run_line_magic("config", f"HooklabMagics.home = {str(tmp_path)!r}")
    yield ip
    ip.run_line_magic("unload_ext", "hooklab")
    for magics in list(ip.configurables):
        if isinstance(magics, HooklabMagics):
            magics._new_workspace(None)
            ip.configurables.remove(magics)
    InteractiveShell.clear_instance()


def store_models(ip: InteractiveShell, count: int) -> None:
    ip.run_cell_magic("webhook", "models", SEED)
    ws = next(m for m in ip.configurables if isinstance(m, HooklabMagics)).workspace
    hook = ws.get_webhook("models")
    form = [{"model": f"m{n}", "friendly_name": f"Model {n}"} for n in range(count)]
    ws.record([ws.process(hook.slug, HookRequest.fake(method="POST", form=f)) for f in form])


def test_a_long_history_shows_its_count_and_ends_without_reading_the_rest(
    shell: InteractiveShell, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(historyview, "WHOLE_ROWS", 20)
    store_models(shell, 40)
    read: list[readout.Reading] = []
    real = readout.Reader._open

    def spy(
        reader: readout.Reader, table: str, reading: readout.Reading, *given: Any, **how: Any
    ) -> Any:
        read.append(reading)
        return real(reader, table, reading, *given, **how)

    monkeypatch.setattr(readout.Reader, "_open", spy)  # every read of rows opens through it
    preview = shell.run_line_magic("hooklab", "events")
    assert isinstance(preview, HistoryPreview) and len(preview) == 40
    # Two reads of five rows each: the first five and the last five.
    assert [(r.limit, r.oldest) for r in read] == [(5, True), (5, False)]
    models = preview.rows["resource.id"].tolist()
    assert models == [f"product.models.m{n}" for n in (0, 1, 2, 3, 4, 35, 36, 37, 38, 39)]
    assert preview.rows.index.tolist() == [0, 1, 2, 3, 4, 35, 36, 37, 38, 39]
    text = repr(preview)
    assert "40 events: the first and last 5 shown" in text
    assert preview.rows["id"].iloc[-1] in text and "[10 rows" not in text
    assert "40 events" in preview._repr_html_()
    # Asked for, the whole frame, as Workspace.events() gives it.
    assert len(preview.frame) == 40 and len(read) == 3
    flat = shell.run_line_magic("hooklab", "events --flatten")
    assert flat.rows["payload.body.model"].tolist()[-1] == "m39"
    requests = shell.run_line_magic("hooklab", "requests")
    assert isinstance(requests, HistoryPreview) and requests.rows["body"].iloc[0].startswith(
        "model=m0"
    )


def test_a_short_history_is_the_frame_itself(shell: InteractiveShell) -> None:
    store_models(shell, 3)
    frame = shell.run_line_magic("hooklab", "events")
    assert isinstance(frame, pd.DataFrame) and len(frame) == 3
