"""Prefect's template environment made from Jinja alone, and a runner that renders templates
through hooklab's sandbox in a child process with a memory cap, so that a template that escapes
the budgets fails its test instead of taking the test run down with it."""

from __future__ import annotations

import json
import resource
import subprocess
import sys
from typing import Any

from jinja2 import ChainableUndefined
from jinja2.sandbox import ImmutableSandboxedEnvironment

# The child's address space: far above what a render within its budgets needs, far below what
# a template that escapes them takes.
MEMORY_CAP = 1 << 30


def prefects_environment() -> ImmutableSandboxedEnvironment:
    """The environment Prefect builds for user templates (SPEC 4), made here from Jinja alone."""
    env = ImmutableSandboxedEnvironment(
        undefined=ChainableUndefined, extensions=["jinja2_humanize_extension.HumanizeExtension"]
    )
    env.globals["range"] = lambda *args: range(*args)
    return env


def render_in_child(templates: dict[str, str], timeout: float = 600) -> dict[str, dict[str, Any]]:
    """Render each template through hooklab's sandbox in one child process, capped at
    MEMORY_CAP bytes: by name, `{"outcome": "rendered" | error class, "message", "line"}`.
    A template the child never finished (a hang, a crash) is missing from the answer; its name
    is then in `{"unfinished": ...}`."""
    process = subprocess.run(
        [sys.executable, __file__],
        input=json.dumps(templates),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    found: dict[str, dict[str, Any]] = {}
    for line in process.stdout.splitlines():
        if line.startswith("{"):
            result = json.loads(line)
            found[result.pop("name")] = result
    if process.returncode != 0:
        found["unfinished"] = {"stderr": process.stderr[-2000:]}
    return found


def _main() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP, MEMORY_CAP))
    from hooklab.core.templates import TemplateError, compile_template

    context = {"body": {"text": "x" * 1_000_000, "n": 3}, "headers": {}, "method": "POST"}
    for name, source in json.loads(sys.stdin.read()).items():
        print(json.dumps({"name": name, "outcome": "started"}), flush=True)
        try:
            text = compile_template(source).render(dict(context))
            result: dict[str, object] = {
                "outcome": "rendered",
                "message": text[:200],
                "line": None,
            }
        except TemplateError as exc:
            result = {"outcome": type(exc).__name__, "message": str(exc), "line": exc.lineno}
        except BaseException as exc:  # what escaped the sandbox's own errors
            result = {"outcome": type(exc).__name__, "message": str(exc)[:500], "line": None}
        print(json.dumps({"name": name, **result}), flush=True)


if __name__ == "__main__":
    _main()
