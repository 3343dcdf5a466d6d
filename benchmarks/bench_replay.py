"""Replay 100,000 captured form requests through the seed's dynamic template into an events
DataFrame, against the pipeline a user would write by hand, measured in the same run.

The hand-written baseline renders each request in a sandboxed Jinja2 environment, json.loads
the text, adds a new id and time, and runs pd.json_normalize over all of them. hooklab's replay
does more (every event is validated as Prefect would, the webhook is added to `related`, the
default payload is built, failures are caught per request), and must still be at least as fast.

    .venv/bin/python benchmarks/bench_replay.py [--requests 100000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import gc
import json
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from urllib.parse import parse_qsl

import pandas as pd
from jinja2 import ChainableUndefined
from jinja2.sandbox import ImmutableSandboxedEnvironment

from hooklab.core.examples import DYNAMIC_TEMPLATE as SEED_TEMPLATE
from hooklab.core.request import HookRequest
from hooklab.history.replay import replay


def captured_requests(count: int) -> list[HookRequest]:
    """Form posts as a sender would make them, with the usual headers."""
    return [
        HookRequest.fake(
            method="POST",
            path="/hooks/AERylZ_uewzpDx-8fcweHQ",
            headers={"Host": "127.0.0.1:8765", "User-Agent": "curl/8.5.0", "Accept": "*/*"},
            form={"model": f"recommender-{i % 5000}", "friendly_name": f"Recommender {i}"},
        )
        for i in range(count)
    ]


def by_hand(requests: Sequence[HookRequest]) -> pd.DataFrame:
    """What a user would write instead of hooklab: render, parse, id and time, normalize."""
    env = ImmutableSandboxedEnvironment(undefined=ChainableUndefined)
    template = env.from_string(SEED_TEMPLATE)
    events = []
    for request in requests:
        body = dict(parse_qsl(request.body.decode()))
        event = json.loads(
            template.render(method=request.method, headers=dict(request.headers), body=body)
        )
        event["id"] = str(uuid.uuid4())
        event["occurred"] = datetime.now(timezone.utc).isoformat()
        events.append(event)
    return pd.json_normalize(events)


def with_hooklab(requests: Sequence[HookRequest]) -> pd.DataFrame:
    return replay(requests, SEED_TEMPLATE, progress=False).events


def timed(run: Callable[[], pd.DataFrame]) -> tuple[float, pd.DataFrame]:
    """CPU seconds of this process: other work on a shared machine does not count."""
    gc.collect()
    started = time.process_time()
    frame = run()
    return time.process_time() - started, frame


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)

    requests = captured_requests(args.requests)
    # Rounds alternate between the two, so that both meet the same load on a shared machine;
    # each keeps its best round.
    hand_seconds = ours_seconds = float("inf")
    for _ in range(args.rounds):
        seconds, hand = timed(lambda: by_hand(requests))
        hand_seconds = min(hand_seconds, seconds)
        seconds, ours = timed(lambda: with_hooklab(requests))
        ours_seconds = min(ours_seconds, seconds)

    # Same events, or the race means nothing.
    assert len(ours) == len(hand) == len(requests)
    assert ours["resource.id"].tolist() == hand["resource.prefect.resource.id"].tolist()
    assert ours["resource.name"].tolist() == hand["resource.prefect.resource.name"].tolist()

    n = len(requests)
    ratio = hand_seconds / ours_seconds
    print(f"replay of {n:,} form requests into an events DataFrame (best of {args.rounds})")
    print(f"  hand-written pipeline: {n / hand_seconds:>10,.0f} events/s")
    print(f"  hooklab.history.replay:        {n / ours_seconds:>10,.0f} events/s")
    print(f"  ratio hooklab / hand-written: {ratio:.2f}x (target: at least 1.00x)")
    return 0 if ratio >= 1.0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
