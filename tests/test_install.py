"""The installed package, as a new user meets it: Python started in the folder above a clone
named `hooklab` still imports hooklab itself, not the clone's folder as a namespace package."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import hooklab


def test_a_folder_named_hooklab_beside_the_working_directory_does_not_shadow_the_package(
    tmp_path: Path,
) -> None:
    (tmp_path / "hooklab").mkdir()  # what a clone into ./hooklab looks like from above it
    found = subprocess.run(
        [sys.executable, "-c", "import hooklab; print(hooklab.__file__, hooklab.Workspace)"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert found.returncode == 0, found.stderr
    assert found.stdout.split()[0] == hooklab.__file__, (
        "hooklab resolved to the folder beside the working directory: install it with "
        "`make install` (a path-based editable install)"
    )
