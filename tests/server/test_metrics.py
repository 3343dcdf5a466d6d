"""`hooklab serve --metrics-port`: Prometheus metrics scraped over a real socket after real
requests, on both stores, and never a slug, a template, a body or a key in them."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from cli_support import base_env, served_url, untimed
from prometheus_client.parser import text_string_to_metric_families

from hooklab.server.metrics import public_destination
from hooklab.workspace import Workspace

ADMIN = "metrics-admin-key-5d1e"
# A template that fails (on purpose) when the body has no `n`: a render failure.
TEMPLATE = (
    '{"event": "order.{{ body.n }}", "resource": {"prefect.resource.id": "tmpl-marker-7f3"}}'
    "{% if body.n is not defined %}{{ 1 / 0 }}{% endif %}"
)
BODY = b"n=42&secret_field=body-marker-9c1"
DESTINATION = "http://127.0.0.1:9/api"  # nothing listens: events wait, and their lag grows


@contextmanager
def served(home: Path, *args: str) -> Iterator[tuple[str, str]]:
    """`hooklab serve --metrics-port 0`; yields the webhooks' base URL and the metrics URL."""
    process = subprocess.Popen(
        [sys.executable, "-m", "hooklab.server", "--home", str(home), "--port", "0",
         "--metrics-port", "0", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=base_env(HOOKLAB_ADMIN_KEY=ADMIN),
    )  # fmt: skip
    try:
        assert process.stdout is not None and process.stderr is not None
        base = served_url(process.stdout.readline())
        lines = [untimed(process.stdout.readline())[0] for _ in range(3)]
        [metrics] = [line for line in lines if line.startswith("metrics at http://127.0.0.1:")]
        yield base, metrics.removeprefix("metrics at ")
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=30)
    assert process.returncode == 0


def post(url: str, body: bytes) -> int:
    request = urllib.request.Request(
        url, data=body, headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as refused:
        refused.close()
        return refused.code


def scrape(url: str) -> tuple[str, dict[tuple[str, tuple[tuple[str, str], ...]], float]]:
    """The text at `url`, and each sample by name and labels."""
    with urllib.request.urlopen(url, timeout=10) as answer:
        assert answer.headers["Content-Type"].startswith("text/plain; version=")
        text = answer.read().decode()
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }
    return text, samples


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, ...]]:
    """The `--store` arguments of each backend (none: the home's SQLite file)."""
    if request.param == "sqlite":
        yield ()
    else:
        yield ("--store", request.getfixturevalue("postgres_url"))


def test_requests_failures_commits_and_forwarding_are_counted_and_nothing_secret_shown(
    tmp_path: Path, store: tuple[str, ...]
) -> None:
    ws = Workspace(store[1] if store else tmp_path / "hooklab.db", home=tmp_path)
    hook = ws.create_webhook("orders", TEMPLATE)
    ws.forward_to(DESTINATION)
    ws.close()
    with served(tmp_path, *store) as (base, metrics):
        url = f"{base}/hooks/{hook.slug}"
        statuses = [
            post(url, BODY),
            post(url, BODY),
            post(url, b"x=1"),
            post(f"{base}/hooks/no", b""),
        ]
        assert statuses == [204, 204, 400, 404]
        text, samples = scrape(metrics)
        with pytest.raises(urllib.error.HTTPError) as hidden:  # not on the webhooks' port
            urllib.request.urlopen(f"{base}/metrics", timeout=10)
        hidden.value.close()
        assert hidden.value.code == 404
    by_webhook = (("status", "204"), ("webhook", hook.id))
    assert samples[("hooklab_requests_total", by_webhook)] == 2
    assert samples[("hooklab_requests_total", (("status", "400"), ("webhook", hook.id)))] == 1
    assert samples[("hooklab_requests_total", (("status", "404"), ("webhook", "unknown")))] == 1
    failed = (("reason", "render-error"), ("webhook", hook.id))
    assert samples[("hooklab_render_failures_total", failed)] == 1
    assert samples[("hooklab_commit_seconds_count", ())] >= 1
    assert samples[("hooklab_commit_seconds_sum", ())] > 0
    assert samples[("hooklab_webhook_info", (("name", "orders"), ("webhook", hook.id)))] == 1
    destination = (("destination", DESTINATION),)
    assert samples[("hooklab_forwarding_pending", destination)] == 3  # two events, one failure
    assert samples[("hooklab_forwarding_lag_seconds", destination)] > 0
    assert samples[("hooklab_store_up", ())] == 1
    for secret in (hook.slug, "tmpl-marker-7f3", "body-marker-9c1", "1 / 0", ADMIN):
        assert secret not in text
    assert not any(name.startswith("hooklab_") and "slug" in name for name, _ in samples)


def test_a_metrics_port_in_use_refuses_to_start(tmp_path: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = str(taken.getsockname()[1])
        refused = subprocess.run(
            [sys.executable, "-m", "hooklab.server", "--home", str(tmp_path), "--port", "0",
             "--metrics-port", port],
            capture_output=True, text=True, timeout=30, env=base_env(HOOKLAB_ADMIN_KEY=ADMIN),
        )  # fmt: skip
    assert refused.returncode == 1
    assert refused.stderr.strip() == (
        f"hooklab: cannot serve metrics on 127.0.0.1:{port}: Address already in use"
    )


def test_a_destination_is_labelled_without_credentials() -> None:
    assert public_destination("https://user:pw@prefect.example.com:4200/api?k=v#f") == (
        "https://prefect.example.com:4200/api"
    )
    assert public_destination("http://[::1]:4200/api") == "http://[::1]:4200/api"
