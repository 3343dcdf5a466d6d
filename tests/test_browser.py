"""JupyterLab in headless Chromium: the quickstart runs, its widgets render, its event table shows.

Uses Debian's chromium through Playwright's Python package (never a downloaded browser), and skips
with a reason where either is missing. Set HOOKLAB_SCREENSHOT=docs/screenshot-quickstart.png to
refresh the picture the README shows; otherwise the screenshot goes to the test's tmp_path.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import nbformat
import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Page

CHROMIUM = Path("/usr/bin/chromium")
NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
QUICKSTART = "01-quickstart.ipynb"
TOKEN = "hooklab-browser-test"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
# Generous: a cold JupyterLab on two cores takes a few seconds, the notebook under a minute.
SERVER_START_SECONDS = 90
RUN_ALL_MS = 120_000

pytestmark = pytest.mark.browser


@dataclass
class Lab:
    url: str
    log: Path

    def page_url(self, notebook: str) -> str:
        return f"{self.url}/lab/tree/{notebook}?token={TOKEN}"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_until_serving(url: str, server: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + SERVER_START_SECONDS
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"JupyterLab exited with {server.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/api/status?token={TOKEN}", timeout=2) as reply:
                if reply.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.25)
    pytest.fail(
        f"JupyterLab did not answer within {SERVER_START_SECONDS}s:\n{log.read_text()[-3000:]}"
    )


def _copy_without_outputs(source: Path, folder: Path) -> None:
    """Saved outputs are cleared, so whatever the browser shows comes from this run."""
    notebook = nbformat.read(source, as_version=4)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    notebook.metadata.pop("widgets", None)
    nbformat.write(notebook, folder / source.name)


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    """A JupyterLab server on loopback, with its own home, settings and hooklab history."""
    if not CHROMIUM.exists():
        pytest.skip(f"Debian's chromium is not installed at {CHROMIUM} (apt-get install chromium)")
    pytest.importorskip(
        "playwright.sync_api", reason="Playwright's Python package is not installed"
    )
    root = tmp_path / "notebooks"
    root.mkdir()
    _copy_without_outputs(NOTEBOOKS / QUICKSTART, root)
    settings = tmp_path / "lab-settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)
    # Without this, JupyterLab asks in a toast whether to fetch Jupyter news: noise in the picture.
    (settings / "notification.jupyterlab-settings").write_text('{"fetchNews": "false"}')
    env = {
        **os.environ,
        "HOOKLAB_HOME": str(tmp_path / "hooklab-home"),
        "JUPYTER_CONFIG_DIR": str(tmp_path / "jupyter-config"),
        "JUPYTER_RUNTIME_DIR": str(tmp_path / "jupyter-runtime"),
        "JUPYTERLAB_SETTINGS_DIR": str(tmp_path / "lab-settings"),
        "JUPYTERLAB_WORKSPACES_DIR": str(tmp_path / "lab-workspaces"),
    }
    port = _free_port()
    log = tmp_path / "jupyterlab.log"
    command = [
        sys.executable,
        "-m",
        "jupyterlab",
        "--no-browser",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={TOKEN}",
        "--allow-root",  # CI runs as root
        f"--ServerApp.root_dir={root}",
        "--LabApp.news_url=None",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
    ]
    with log.open("wb") as sink:
        server = subprocess.Popen(command, env=env, stdout=sink, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_serving(url, server, log)
        yield Lab(url, log)
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def _screenshot_path(tmp_path: Path) -> Path:
    wanted = os.environ.get("HOOKLAB_SCREENSHOT")
    return Path(wanted) if wanted else tmp_path / "screenshot-quickstart.png"


ALL_CELLS_RAN = """
() => {
  const prompts = [...document.querySelectorAll('.jp-CodeCell .jp-InputArea-prompt')];
  return prompts.length > 0 && prompts.every(p => /\\[\\d+\\]/.test(p.textContent));
}
"""


def _frame_the_feed_and_table(page: Page) -> None:
    """Hide the file browser and scroll the first widget's cell to the top, for the README."""
    page.locator(".jp-SideBar.jp-mod-left .lm-TabBar-tab.lm-mod-current").click()
    cell = page.locator(".jp-CodeCell", has=page.locator(".jupyter-widgets")).first
    cell.evaluate("node => node.scrollIntoView({block: 'start'})")
    page.wait_for_timeout(300)  # let the scroll and the layout settle before the picture


def test_quickstart_runs_in_jupyterlab_with_widgets_and_event_table(
    lab: Lab, tmp_path: Path
) -> None:
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1100})
            page.goto(lab.page_url(QUICKSTART))
            notebook = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden)")
            # The status bar says Idle only once the kernel is connected; running cells before
            # that makes JupyterLab start a second kernel and drop the first one's work.
            kernel_idle = page.locator("#jp-main-statusbar").get_by_text(re.compile(r"\| Idle$"))
            expect(kernel_idle).to_be_visible(timeout=60_000)
            page.locator(".lm-MenuBar-item", has_text="Run").first.click()
            page.locator(".lm-Menu-item", has_text="Run All Cells").first.click()
            try:
                page.wait_for_function(ALL_CELLS_RAN, timeout=RUN_ALL_MS)
            except Exception:
                page.screenshot(path=str(tmp_path / "stuck.png"))
                raise
            expect(kernel_idle).to_be_visible(timeout=RUN_ALL_MS)

            # Errors and warnings alike print to stderr: a clean tour shows none.
            stderr = notebook.locator("[data-mime-type='application/vnd.jupyter.stderr']")
            assert stderr.count() == 0, stderr.first.inner_text()

            # The widget manager writes this placeholder until the front end renders the view.
            expect(notebook.get_by_text("Loading widget...")).to_have_count(0, timeout=30_000)
            widgets = notebook.locator(".jupyter-widgets")
            assert widgets.count() > 0, "no widget rendered: the widget front end is missing"
            expect(widgets.first).to_be_visible()
            # The quickstart sends two requests from cells, one bad, and one from another
            # process standing in for a terminal: the feed shows all three as they arrive.
            expect(widgets.first).to_contain_text("3 events, 1 failed")
            table = notebook.locator("table.dataframe").first
            table.scroll_into_view_if_needed()
            expect(table).to_be_visible()

            shot = _screenshot_path(tmp_path)
            shot.parent.mkdir(parents=True, exist_ok=True)
            _frame_the_feed_and_table(page)
            page.screenshot(path=str(shot))
            assert shot.stat().st_size > 10_000
        finally:
            browser.close()
    shutil.rmtree(tmp_path / "notebooks", ignore_errors=True)
