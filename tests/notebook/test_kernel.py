"""hooklab inside a real Jupyter kernel (nbclient): the receiver on the kernel's own loop,
`await hooklab.send`, a request from another process while the kernel is idle, and a blocking
call to the kernel's own receiver failing fast instead of hanging."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
from kernel_support import Kernel, kernel_on

from hooklab.core.examples import DYNAMIC_TEMPLATE as SEED


@pytest.fixture(scope="module")
def kernel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kernel]:
    with kernel_on(tmp_path_factory.mktemp("hooklab-home")) as kernel:
        yield kernel


def test_first_webhook_starts_the_receiver_and_shows_url_and_curl(kernel: Kernel) -> None:
    out = kernel.run(f"%%webhook models\n{SEED}")
    assert "hooklab receiver listening at http://127.0.0.1:" in out
    assert "/hooks/" in out and "curl -X POST http://127.0.0.1:" in out
    assert "-d model=example -d friendly_name=example" in out
    assert "compatible with Prefect Cloud" in out


def test_send_in_a_cell_returns_the_outcome(kernel: Kernel) -> None:
    kernel.run("url = %hooklab url models")
    out = kernel.run(
        "import hooklab\n"
        "sent = await hooklab.send(url, form={'model': 'm1', 'friendly_name': 'M1'})\n"
        "print(sent.status, repr(sent.body), sent.outcome.events[0].resource.id)"
    )
    assert out.strip() == "204 '' product.models.m1"
    bad = kernel.run(
        "sent = await hooklab.send(url, body='{', headers={'Content-Type': 'application/json'})\n"
        "print(sent.status, sent.outcome.error)"
    )
    assert bad.startswith("400 Invalid JSON body")


def test_request_from_another_process_while_the_kernel_is_idle(kernel: Kernel) -> None:
    url = kernel.run("print(url)").strip()
    sender = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, urllib.request\n"
            "req = urllib.request.Request(sys.argv[1], data=b'model=m2&friendly_name=M2')\n"
            "print(urllib.request.urlopen(req, timeout=20).status)",
            url,
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert sender.stdout.strip() == "204", sender.stderr
    out = kernel.run(
        "import json\ndf = %hooklab events models\nprint(json.dumps(sorted(df['resource.id'])))"
    )
    assert "product.models.m2" in json.loads(out)


def test_blocking_call_to_own_receiver_fails_fast_with_advice(kernel: Kernel) -> None:
    started = time.monotonic()
    out = kernel.run(
        "import urllib.request, http.client\n"
        "try:\n"
        "    urllib.request.urlopen(urllib.request.Request(url, data=b'model=x'), timeout=20)\n"
        "except Exception as exc:\n"
        "    print('urllib:', exc)\n"
        "host, port = url.split('/')[2].split(':')\n"
        "conn = http.client.HTTPConnection(host, int(port), timeout=20)\n"
        "try:\n"
        "    conn.request('POST', '/hooks/x', body=b'')\n"
        "except Exception as exc:\n"
        "    print('http.client:', type(exc).__name__, exc)\n"
    )
    assert time.monotonic() - started < 10
    assert out.count("await hooklab.send") == 2, out
    assert "http.client: BlockingCallError" in out


def test_the_guard_leaves_other_ports_alone(kernel: Kernel) -> None:
    out = kernel.run(
        "import socket, urllib.request\n"
        "probe = socket.socket(); probe.bind(('127.0.0.1', 0)); free = probe.getsockname()[1]\n"
        "probe.close()\n"
        "try:\n"
        "    urllib.request.urlopen(f'http://127.0.0.1:{free}/', timeout=5)\n"
        "except Exception as exc:\n"
        "    print(exc)\n"
    )
    assert "Connection refused" in out and "hooklab" not in out


def test_a_long_replay_shows_a_bar_that_leaves_no_trace(kernel: Kernel) -> None:
    outputs = kernel.run_outputs(
        "requests = [hooklab.HookRequest.fake(method='POST', form={'model': str(i)})\n"
        "            for i in range(1500)]\n"
        "hook = %hooklab get models\n"
        "result = hooklab.replay(requests, hook)\n"
        "print(len(result.events))"
    )
    texts = [o.get("text", "") for o in outputs if o.get("output_type") == "stream"]
    assert "".join(texts).strip() == "1500"
    # The bar was displayed, then its output replaced by nothing: no widget is saved.
    shown = [o for o in outputs if o.get("output_type") == "display_data"]
    assert all("application/vnd.jupyter.widget-view+json" not in o["data"] for o in shown)
    assert all(o["data"].get("text/plain", "") == "" for o in shown)


def test_webhook_and_replay_have_html_views(kernel: Kernel) -> None:
    outputs = kernel.run_outputs("%hooklab get models")
    html = outputs[-1]["data"]["text/html"]
    assert "Webhook models" in html and "/hooks/" in html
    outputs = kernel.run_outputs("result")
    assert "1500 requests replayed" in outputs[-1]["data"]["text/html"]


def test_from_the_webhook_cell_to_the_fix_for_a_backslash(kernel: Kernel) -> None:
    """What a user sees, cell by cell, of a template that breaks on a backslash."""
    shop = '{"event": "shop.order.{{ body.order_id }}", "resource": {"prefect.resource.id": "s"}}'
    fix = '{{ ("shop.order." ~ body.order_id)|tojson }}'
    shown = kernel.run(f"%%webhook shop\n{shop}")
    assert "compatible with Prefect Cloud; 1 note" in shown
    assert "a quote, a backslash or a line break" in shown and fix in shown  # the check knows
    sent = kernel.run(
        "import hooklab\nshop_url = %hooklab url shop\n"
        "sent = await hooklab.send(shop_url, json={'order_id': 'A\\\\1'})\n"
        "sent"
    )
    assert sent.startswith("Sent(status=400, error='Template output is not valid JSON")
    # the cause in words, with the template line and the fix, not only the parser's words
    assert "a backslash in body.order_id (line 1 of the template)" in sent and fix in sent
    first = kernel.run("%hooklab failures shop").splitlines()[0].split()
    assert first[:2] == ["error", "webhook_name"]
