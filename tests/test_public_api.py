"""The package's public API stays small, sorted and importable."""

from __future__ import annotations

import doctest
import importlib
import inspect
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import hooklab


def test_all_is_sorted_and_short() -> None:
    assert hooklab.__all__ == sorted(hooklab.__all__)
    assert len(hooklab.__all__) <= 20


def test_every_public_name_is_in_all_and_every_name_in_all_exists() -> None:
    public = {
        name
        for name, value in vars(hooklab).items()
        if not name.startswith("_") and not inspect.ismodule(value)
    }
    assert public == set(hooklab.__all__)


def test_the_readme_entry_points_are_public() -> None:
    for name in ("Workspace", "HookRequest", "TemplateError", "WebhookNotFound", "Outcome"):
        assert name in hooklab.__all__


def test_the_readme_tour_runs_and_says_what_happens(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    readme = Path(__file__).resolve().parent.parent / "README.md"
    tour = readme.read_text().split("## A tour of the Python API", 1)[1].split("\n## ", 1)[0]
    (code,) = re.findall(r"```python\n(.*?)```", tour, re.S)
    monkeypatch.chdir(tmp_path)
    names: dict[str, Any] = {}
    exec(compile(code, "README.md", "exec"), names)
    assert names["outcome"].status == 204
    assert names["bad"].status == 400
    assert names["bad"].error.startswith("Invalid JSON body: Expecting")
    ws = names["ws"]
    assert [r for r in ws.requests()["status"]] == [204, 400, 401, 204]
    assert ws.events()["failed"].tolist() == [False, True, True, False]
    assert names["key"] not in (tmp_path / "demo" / "hooklab.db").read_bytes().decode("latin-1")
    with pytest.raises(hooklab.TemplateError) as caught:
        ws.create_webhook("broken", '{\n  "event": "e",\n  "resource": {"id": "{{ body.x }"}\n}')
    assert str(caught.value) == "line 3: Template syntax error: unexpected '}'"
    ws.close()


CORE_MODULES = [
    "core.keys", "core.cloudevents", "core.events", "core.pipeline", "core.request",
    "core.templates", "core.times", "core.webhooks", "store.sqlite", "workspace",
]  # fmt: skip


def test_the_examples_in_core_docstrings_hold() -> None:
    tried = 0
    for name in CORE_MODULES:
        module = importlib.import_module(f"hooklab.{name}")
        result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
        assert result.failed == 0, name
        tried += result.attempted
    assert tried >= 5


def test_a_replay_forwards_after_a_plain_import_hooklab() -> None:
    script = (
        "import hooklab\n"
        "result = hooklab.replay([hooklab.HookRequest.fake()], "
        '\'{"event": "e", "resource": {"prefect.resource.id": "r"}}\')\n'
        "try:\n"
        "    result.forward('http://127.0.0.1:9/api')\n"
        "except Exception as exc:\n"
        "    print(type(exc).__name__, exc)\n"
    )
    ran = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    # Nothing listens on port 9: the bridge is there and says so, in one line.
    assert ran.stdout.startswith("PrefectError cannot reach Prefect at http://127.0.0.1:9/api")
