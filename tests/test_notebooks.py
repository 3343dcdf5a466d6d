"""The saved notebooks: complete tours with their outputs, which nbval then checks cell by cell.

nbval compares a fresh run with the saved outputs, but a notebook saved without outputs would
pass it vacuously; these checks make sure every notebook was saved after a full, clean run.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import nbformat
import pytest

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
TOUR = [
    "01-quickstart",
    "02-dynamic-templates",
    "03-pass-through-and-cloudevents",
    "04-github-webhooks",
    "05-replay-and-diff",
    "06-event-history",
    "07-to-prefect",
    "08-templates-under-test",
]
# Paths that would tie a saved output to one machine.
MACHINE_PATH = re.compile(r"/(?:work|root|home|tmp|Users)/[\w.-]+")


def saved(name: str) -> Any:
    return nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)


def code_cells(notebook: Any) -> list[Any]:
    return [cell for cell in notebook.cells if cell.cell_type == "code"]


def output_text(output: Any) -> str:
    if output.output_type == "stream":
        return str(output.text)
    if output.output_type == "error":
        return f"{output.ename}: {output.evalue}"
    return "\n".join(
        str(value) for key, value in output.get("data", {}).items() if key != "image/png"
    )


def test_the_tour_is_numbered_and_complete() -> None:
    present = sorted(path.stem for path in NOTEBOOKS.glob("*.ipynb"))
    assert present == [name for name in TOUR if (NOTEBOOKS / f"{name}.ipynb").exists()]
    assert present[:1] == ["01-quickstart"], "make lab opens 01-quickstart"


@pytest.mark.parametrize("name", TOUR)
def test_saved_after_one_clean_run_top_to_bottom(name: str) -> None:
    cells = code_cells(saved(name))
    counts = [cell.execution_count for cell in cells]
    assert counts == list(range(1, len(cells) + 1)), f"{name}: re-run it top to bottom and save"
    assert sum(bool(cell.outputs) for cell in cells) >= len(cells) // 2, f"{name}: outputs missing"
    for cell in cells:
        expected_error = "raises-exception" in cell.metadata.get("tags", [])
        errors = [
            output
            for output in cell.outputs
            if output.output_type == "error"
            or (output.output_type == "stream" and output.name == "stderr")
        ]
        assert bool(errors) == expected_error, f"{name}: {cell.source[:60]!r}: {errors}"


@pytest.mark.parametrize("name", TOUR)
def test_starts_in_deterministic_mode_and_a_fresh_home(name: str) -> None:
    first = code_cells(saved(name))[0].source
    assert "%load_ext hooklab" in first
    assert "%config HooklabMagics.deterministic = True" in first
    assert "%config HooklabMagics.home = tempfile.mkdtemp(" in first


@pytest.mark.parametrize("name", TOUR)
def test_outputs_name_no_path_of_this_machine(name: str) -> None:
    for cell in code_cells(saved(name)):
        for output in cell.outputs:
            found = MACHINE_PATH.search(output_text(output))
            assert found is None, f"{name}: {found.group(0) if found else ''} in an output"


@pytest.mark.parametrize("name", TOUR)
def test_runs_in_the_environments_python_kernel(name: str) -> None:
    assert saved(name).metadata.kernelspec.name == "python3"


def test_the_quickstart_links_every_later_notebook_of_the_tour() -> None:
    cells = [cell for cell in saved("01-quickstart").cells if cell.cell_type == "markdown"]
    [following] = [cell.source for cell in cells if cell.source.startswith("## Next")]
    linked = re.findall(r"\[([\w-]+)\]\(([\w-]+)\.ipynb\)", following)
    assert linked == [(name, name) for name in TOUR[1:]]
    assert all((NOTEBOOKS / f"{name}.ipynb").exists() for name, _ in linked)


def test_the_quickstart_says_what_deterministic_mode_does_to_times() -> None:
    notebook = saved("01-quickstart")
    first = code_cells(notebook)[0]
    setting = next(line for line in first.source.splitlines() if "deterministic" in line)
    assert "leave out for real traffic" in setting  # a copied cell says it
    prose = " ".join(cell.source for cell in notebook.cells if cell.cell_type == "markdown")
    assert "2024-01-01 00:00:00 UTC and moves on one second each time it is read" in " ".join(
        prose.split()
    )
