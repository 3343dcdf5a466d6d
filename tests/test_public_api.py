"""The package's public API stays small, sorted and importable."""

from __future__ import annotations

import doctest
import importlib
import inspect
import subprocess
import sys

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


def test_the_entry_points_the_docs_use_are_public() -> None:
    for name in ("Workspace", "HookRequest", "TemplateError", "WebhookNotFound", "Outcome"):
        assert name in hooklab.__all__


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
