"""A live Jupyter kernel for tests (nbclient): run cells, read their output."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import nbformat
from nbclient import NotebookClient


class Kernel:
    """One live kernel; `run(source)` executes a cell and returns its text output."""

    def __init__(self, client: NotebookClient) -> None:
        self.client = client
        self.count = 0

    def run_outputs(self, source: str) -> list[dict[str, Any]]:
        cell = nbformat.v4.new_code_cell(source)
        self.client.nb.cells.append(cell)
        self.client.execute_cell(cell, len(self.client.nb.cells) - 1)
        return list(cell.outputs)

    def run(self, source: str) -> str:
        text = []
        for output in self.run_outputs(source):
            if output.get("output_type") == "stream":
                text.append(output["text"])
            elif "data" in output:
                text.append(output["data"].get("text/plain", ""))
        return "".join(text)


@contextmanager
def fresh_kernel(folder: Path | None = None) -> Iterator[Kernel]:
    """A fresh kernel (working in `folder`, if given), shut down on exit."""
    nb = nbformat.v4.new_notebook()
    # kernel "python3" with argv[0] "python" runs the interpreter running these tests (.venv).
    client = NotebookClient(nb, kernel_name="python3", timeout=60, allow_errors=False)
    if folder is not None:
        client.resources = {"metadata": {"path": str(folder)}}
    with client.setup_kernel():
        yield Kernel(client)


@contextmanager
def kernel_on(home: Path, *, deterministic: bool = False) -> Iterator[Kernel]:
    """A fresh kernel with `%load_ext hooklab` on `home`, shut down on exit."""
    with fresh_kernel() as kernel:
        kernel.run(
            f"%load_ext hooklab\n%config HooklabMagics.home = {str(home)!r}\n"
            f"%config HooklabMagics.deterministic = {deterministic}"
        )
        yield kernel
