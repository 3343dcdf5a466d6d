"""One real Prefect server per test module (it takes ~15 s to start); skipped without prefect."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from prefect_support import PrefectServer, prefect_command


@pytest.fixture(scope="module")
def prefect_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrefectServer]:
    command = prefect_command()
    if command is None:
        pytest.skip("prefect is not installed (pip install -e '.[test]' brings it)")
    server = PrefectServer(Path(tmp_path_factory.mktemp("prefect-home")), command).start()
    try:
        yield server
    finally:
        server.stop()
