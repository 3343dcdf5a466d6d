"""What the CLI says when something goes wrong: a person's mistake in one line, a bug (a
ValueError included, from pandas or from hooklab itself) with its traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from cli_support import TEMPLATE, base_env, run_cli

# `hooklab` with a bug planted where `webhook ls` reads the webhooks: the kind of bug named by
# the first argument, the command's words after it.
WITH_A_BUG = """
import sys

import pandas as pd

from hooklab.cli.app import main
from hooklab.workspace import Workspace


def list_webhooks(self):
    if sys.argv[1] == "pandas":
        pd.DataFrame({"id": [1, 2], "name": ["a"]})  # pandas: "All arrays must be ..."
    raise ValueError("a bug in hooklab")


Workspace.list_webhooks = list_webhooks
sys.exit(main(sys.argv[2:]))
"""


def test_a_mistake_is_one_line_without_a_traceback(tmp_path: Path) -> None:
    env = base_env(HOOKLAB_HOME=str(tmp_path))
    result = run_cli(env, "webhook", "create", " ", "-t", TEMPLATE)
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == "A webhook or service account needs a non-empty name\n"


@pytest.mark.parametrize(
    ("bug", "last_line"),
    [
        ("pandas", "ValueError: All arrays must be of the same length"),
        ("hooklab", "ValueError: a bug in hooklab"),
    ],
)
def test_a_value_error_from_a_bug_shows_its_traceback(
    tmp_path: Path, bug: str, last_line: str
) -> None:
    result = subprocess.run(
        [sys.executable, "-c", WITH_A_BUG, bug, "webhook", "ls"],
        capture_output=True,
        text=True,
        env=base_env(HOOKLAB_HOME=str(tmp_path)),
        timeout=60,
    )
    assert (result.returncode, result.stdout) == (1, "")
    lines = result.stderr.splitlines()
    assert lines[0] == "Traceback (most recent call last):"
    assert "in list_webhooks" in result.stderr
    assert lines[-1] == last_line


# `hooklab webhook push` with a bug planted in the push itself, before anything is sent.
PUSH_WITH_A_BUG = """
import sys

import hooklab.prefect.deploy
from hooklab.cli.app import main
from hooklab.workspace import Workspace, default_home


def push_webhook(hook, remote):
    return hook["no such key"], True


ws = Workspace(default_home() / "hooklab.db")
ws.create_webhook("models", sys.argv[1])
ws.close()
hooklab.prefect.deploy.push_webhook = push_webhook
sys.exit(main(["webhook", "push", "models", "--to", "http://127.0.0.1:9/api", "--api-key", "k"]))
"""


def test_a_bug_while_pushing_is_not_taken_for_the_remote_s_answer(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-c", PUSH_WITH_A_BUG, TEMPLATE],
        capture_output=True,
        text=True,
        env=base_env(HOOKLAB_HOME=str(tmp_path)),
        timeout=60,
    )
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr.splitlines()[0] == "Traceback (most recent call last):"
    assert result.stderr.splitlines()[-1] == "KeyError: 'no such key'"
    assert "does not look like" not in result.stderr
