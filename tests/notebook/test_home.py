"""One stable URL per home, in real kernels (nbclient): a restarted kernel serves the same URL, a
second kernel on the home uses the first one's receiver and takes over when it is gone, the
event feed follows requests another kernel stored, and deterministic sessions never collide."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from contextlib import ExitStack
from pathlib import Path

from kernel_support import Kernel, kernel_on

from hooklab.core.examples import DYNAMIC_TEMPLATE as SEED
from hooklab.workspace import Workspace


def send_from_outside(url: str, model: str) -> str:
    """A POST from another process, as a real sender's would be, while the kernels are idle."""
    sender = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, urllib.request\n"
            "req = urllib.request.Request(sys.argv[1], data=sys.argv[2].encode())\n"
            "print(urllib.request.urlopen(req, timeout=20).status)",
            url,
            f"model={model}&friendly_name={model}",
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    return sender.stdout.strip() or sender.stderr.strip().splitlines()[-1]


def url_in(kernel: Kernel) -> str:
    return kernel.run("u = %hooklab url models\nprint(u)").strip().splitlines()[-1]


def wait_in(kernel: Kernel, condition: str, seconds: float = 10) -> str:
    """Await in the kernel (so its loop runs) until `condition` holds; its final value."""
    return kernel.run(
        "import asyncio\n"
        f"for _ in range({int(seconds * 10)}):\n"
        f"    if {condition}:\n"
        "        break\n"
        "    await asyncio.sleep(0.1)\n"
        f"print({condition})"
    ).strip()


def test_a_restarted_kernel_serves_the_same_url(tmp_path: Path) -> None:
    with kernel_on(tmp_path) as first:
        first.run(f"%%webhook models\n{SEED}")
        url = url_in(first)
        assert send_from_outside(url, "before") == "204"
    with kernel_on(tmp_path) as restarted:
        out = restarted.run("%hooklab serve")
        assert url.split("/hooks/")[0] in out
        assert url_in(restarted) == url
        assert send_from_outside(url, "after") == "204"
    ws = Workspace(tmp_path / "hooklab.db")
    assert sorted(ws.events()["resource.id"]) == ["product.models.after", "product.models.before"]
    ws.close()


def test_a_second_kernel_uses_the_first_ones_url_follows_it_and_takes_over(
    tmp_path: Path,
) -> None:
    with ExitStack() as first_alive, kernel_on(tmp_path) as second:
        first = first_alive.enter_context(kernel_on(tmp_path))
        first.run(f"%%webhook models\n{SEED}")
        url = url_in(first)
        shown = second.run("u = %hooklab url models\nprint(u)")
        assert "this home is served at" in shown and shown.strip().endswith(url)
        second.run(
            "from hooklab.notebook.widgets import EventFeed\n"
            "feed = EventFeed(webhook='models', interval=0.2)"
        )
        assert send_from_outside(url, "seen-by-both") == "204"
        assert wait_in(second, "feed.received == 1") == "True"
        assert "product.models.seen-by-both" in second.run("print(feed.table.value)")

        first_alive.close()  # the kernel that served the home is gone
        second.run("from hooklab.notebook.magics import active")
        assert wait_in(second, "active().receiver is not None", seconds=15) == "True"
        assert url_in(second) == url  # the same port: senders keep their URL
        assert send_from_outside(url, "after-takeover") == "204"
        assert wait_in(second, "feed.received == 2") == "True"


def test_a_public_url_is_the_base_of_every_url_shown(tmp_path: Path) -> None:
    with kernel_on(tmp_path) as kernel:
        kernel.run('%config HooklabMagics.public_url = "https://hooks.example.test/"')
        out = kernel.run(f"%%webhook models\n{SEED}")
        slug = kernel.run("hook = %hooklab get models\nprint(hook.slug)").strip()
        assert f"URL: https://hooks.example.test/hooks/{slug}" in out
        assert f"curl -X POST https://hooks.example.test/hooks/{slug}" in out
        assert url_in(kernel) == f"https://hooks.example.test/hooks/{slug}"


def test_three_deterministic_sessions_on_one_home_store_every_request(tmp_path: Path) -> None:
    for session in range(3):
        with kernel_on(tmp_path, deterministic=True) as kernel:
            kernel.run(f"%%webhook models\n{SEED}")
            out = kernel.run(
                "import hooklab\nu = %hooklab url models\n"
                f"sent = await hooklab.send(u, form={{'model': 's{session}'}})\n"
                "print(sent.status)"
            )
            assert out.strip().splitlines()[-1] == "204"
            assert send_from_outside(url_in(kernel), f"outside{session}") == "204"
    ws = Workspace(tmp_path / "hooklab.db")
    assert sorted(ws.requests()["status"]) == [204] * 6
    assert ws.events()["failed"].sum() == 0
    ws.close()


def test_a_request_the_store_refuses_is_a_503_the_notebook_is_told_of_once(
    tmp_path: Path,
) -> None:
    with kernel_on(tmp_path) as kernel:
        kernel.run(f"%%webhook models\n{SEED}")
        kernel.run("import hooklab\nu = %hooklab url models")
        holder = sqlite3.connect(tmp_path / "hooklab.db", isolation_level=None)
        holder.execute("BEGIN EXCLUSIVE")  # another program holds the file
        outputs = kernel.run_outputs(
            "first = await hooklab.send(u, form={'model': 'a'})\n"
            "second = await hooklab.send(u, form={'model': 'b'})\n"
            "print(first.status, second.status)"
        )
        holder.execute("ROLLBACK")
        holder.close()
        streams = [(o["name"], o["text"]) for o in outputs if o["output_type"] == "stream"]
        warnings = "".join(text for name, text in streams if name == "stderr")
        assert warnings.count("hooklab warning: a request") == 1
        assert "answered 503" in warnings and "database is locked" in warnings
        assert "".join(text for name, text in streams if name == "stdout").strip() == "503 503"
        after = kernel.run("print((await hooklab.send(u, form={'model': 'c'})).status)")
        assert after.strip() == "204"


def test_config_never_shows_the_password_of_a_store_url(tmp_path: Path) -> None:
    url = "postgresql://someone:s3cret-pw@127.0.0.1:1/db?password=0ther-pw&sslmode=disable"
    with kernel_on(tmp_path) as kernel:
        kernel.run(f'%config HooklabMagics.store = "{url}"')
        shown = kernel.run("%config HooklabMagics") + kernel.run("%config HooklabMagics.store")
        kept = kernel.run(
            f"from hooklab.notebook.magics import _ACTIVE\nprint(_ACTIVE[0].target == {url!r})"
        )
    assert "postgresql://someone@127.0.0.1:1/db?sslmode=disable" in shown
    assert "s3cret" not in shown and "0ther" not in shown
    assert kept.strip() == "True"  # still the one used to connect
