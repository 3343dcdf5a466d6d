"""The package's public API stays small, sorted and importable."""

from __future__ import annotations

import doctest
import importlib
import inspect
import subprocess
import sys

import pytest

import hooklab


def test_all_is_sorted_and_short() -> None:
    assert hooklab.__all__ == sorted(hooklab.__all__)
    assert len(hooklab.__all__) <= 20


def test_every_public_name_is_in_all_and_every_name_in_all_exists() -> None:
    public = {
        name
        for name in dir(hooklab)
        if not name.startswith("_") and not inspect.ismodule(getattr(hooklab, name))
    }
    assert public == set(hooklab.__all__)
    from hooklab.history.replay import replay

    assert hooklab.replay is replay  # the name itself, not a wrapper


def test_a_misspelt_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="has no attribute 'Worksapce'"):
        hooklab.Worksapce  # type: ignore[attr-defined]  # noqa: B018


def test_the_entry_points_the_docs_use_are_public() -> None:
    for name in ("Workspace", "HookRequest", "TemplateError", "WebhookNotFound", "Outcome"):
        assert name in hooklab.__all__


CORE_MODULES = [
    "core.keys", "core.cloudevents", "core.culprit", "core.events", "core.pipeline", "core.request",
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


def run_fresh(code: str) -> tuple[str, set[str]]:
    """What a fresh Python prints running `code`, and the modules it has loaded by the end."""
    script = f"{code}\nimport sys\nprint(' '.join(sorted(sys.modules)))"
    ran = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    printed, _, modules = ran.stdout.rstrip("\n").rpartition("\n")
    return printed, set(modules.split())


HEAVY = {"tornado", "pandas", "IPython", "hypothesis", "pyarrow", "ipywidgets", "sqlite3"}


def test_importing_the_core_loads_no_server_notebook_or_dataframes() -> None:
    _, loaded = run_fresh("import hooklab.core.pipeline")
    assert "hooklab.core.pipeline" in loaded
    assert not loaded & HEAVY
    assert not {name for name in loaded if name.startswith(("hooklab.notebook", "hooklab.prefect"))}


def test_a_public_name_loads_its_own_module_when_first_used() -> None:
    _, loaded = run_fresh("import hooklab\nhooklab.HookRequest.fake()")
    assert "hooklab.core.request" in loaded and not loaded & HEAVY
    _, loaded = run_fresh("import hooklab\nhooklab.Workspace(':memory:').close()")
    assert {"hooklab.workspace", "sqlite3"} <= loaded and "tornado" not in loaded


def test_the_version_is_printed_without_importing_the_commands() -> None:
    printed, loaded = run_fresh("from hooklab.cli import main\nmain(['--version'])")
    assert printed == f"hooklab {hooklab.__version__}"
    assert not loaded & (HEAVY | {"hooklab.cli.app", "hooklab.workspace", "typing"})


def test_a_replay_is_forwarded_by_the_bridge_with_one_line_when_prefect_is_absent() -> None:
    script = (
        "import hooklab\n"
        "from hooklab.prefect import forward_replay\n"
        "result = hooklab.replay([hooklab.HookRequest.fake()], "
        '\'{"event": "e", "resource": {"prefect.resource.id": "r"}}\')\n'
        "try:\n"
        "    forward_replay(result, 'http://127.0.0.1:9/api')\n"
        "except Exception as exc:\n"
        "    print(type(exc).__name__, exc)\n"
    )
    ran = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    # Nothing listens on port 9: the bridge says so, in one line.
    assert ran.stdout.startswith("PrefectError cannot reach Prefect at http://127.0.0.1:9/api")
    assert ran.stdout.count("\n") == 1
