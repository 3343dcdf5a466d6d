"""Binder: binder/ alone rebuilds an environment where the widgets load and the notebooks pass.

The rebuild installs JupyterLab and friends into a fresh virtualenv (about a minute from pip's
cache, more from the network), so it runs where CI is set or HOOKLAB_BINDER_CHECK=1 asks for it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
BINDER = ROOT / "binder"
WIDGET_FRONT_END = "@jupyter-widgets/jupyterlab-manager"
# Everything a Binder user needs to open the notebooks and see their widgets.
LAB = ("jupyterlab", "ipykernel", "ipywidgets", "jupyterlab-widgets", "matplotlib")
# Copied into the rebuild: the project as a Binder checkout has it, without local state.
NOT_IN_A_CHECKOUT = shutil.ignore_patterns(
    ".git", ".venv", "*.egg-info", "__pycache__", ".*_cache", ".ipynb_checkpoints", "build", "dist"
)


def pinned() -> dict[str, str]:
    """binder/requirements.txt as {canonical name: exact version}; any line not `name==v` fails."""
    pins: dict[str, str] = {}
    for number, line in enumerate((BINDER / "requirements.txt").read_text().splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        match = re.fullmatch(r"([A-Za-z0-9_.-]+)==([A-Za-z0-9_.+!-]+)", line)
        assert match, (
            f"binder/requirements.txt line {number} is not pinned as name==version: {line}"
        )
        pins[canonicalize_name(match.group(1))] = match.group(2)
    return pins


def runtime_dependencies() -> list[Requirement]:
    tomllib = pytest.importorskip("tomllib", reason="reading pyproject.toml needs Python 3.11")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return [Requirement(text) for text in project["dependencies"]]


def test_requirements_pin_every_runtime_dependency_within_its_range() -> None:
    pins = pinned()
    for requirement in runtime_dependencies():
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{requirement.name} (a dependency in pyproject.toml) is not pinned"
        assert requirement.specifier.contains(pins[name], prereleases=True), (
            f"binder pins {name}=={pins[name]}, outside pyproject's {requirement}"
        )


def test_requirements_pin_jupyterlab_and_the_widget_front_end() -> None:
    pins = pinned()
    missing = [name for name in LAB if name not in pins]
    assert not missing, f"binder/requirements.txt lacks {missing}"


def test_postbuild_is_executable_and_installs_hooklab_from_the_checkout() -> None:
    script = BINDER / "postBuild"
    assert os.access(script, os.X_OK), "Binder runs postBuild only when it is executable"
    commands = [line for line in script.read_text().splitlines() if "pip install" in line]
    assert commands and commands[-1].rstrip().endswith(" ."), commands


@pytest.mark.binder
def test_binder_environment_runs_the_notebooks(tmp_path: Path) -> None:
    if not (os.environ.get("CI") or os.environ.get("HOOKLAB_BINDER_CHECK")):
        pytest.skip(
            "slow: rebuilds the Binder environment in a fresh virtualenv; "
            "set HOOKLAB_BINDER_CHECK=1 (or CI=1) to run it"
        )
    checkout = tmp_path / "checkout"
    shutil.copytree(ROOT, checkout, ignore=NOT_IN_A_CHECKOUT)
    venv = tmp_path / "binder-env"
    bin_dir = venv / "bin"
    outside = ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME")
    env = {name: value for name, value in os.environ.items() if name not in outside}
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    env["HOOKLAB_HOME"] = str(tmp_path / "hooklab-home")

    def run(*command: str | Path) -> str:
        done = subprocess.run(
            [str(part) for part in command],
            cwd=checkout,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        output = done.stdout + done.stderr
        assert done.returncode == 0, f"{' '.join(map(str, command))} failed:\n{output[-5000:]}"
        return output

    run(sys.executable, "-m", "venv", venv)
    python = bin_dir / "python"
    run(python, "-m", "pip", "install", "--quiet", "-r", "binder/requirements.txt")
    run("bash", "binder/postBuild")
    labextensions = run(bin_dir / "jupyter", "labextension", "list")
    assert WIDGET_FRONT_END in labextensions, labextensions
    # The test runner is not part of the Binder image: the same pytest and nbval as this suite.
    run(python, "-m", "pip", "install", "--quiet", f"pytest=={version('pytest')}",
        f"nbval=={version('nbval')}")  # fmt: skip
    report = run(python, "-m", "pytest", "-p", "no:cacheprovider", "-q", "notebooks")
    assert re.search(r"\d+ passed", report) and "failed" not in report, report[-3000:]
