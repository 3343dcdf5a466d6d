"""The core's cost: hooklab's render and pipeline against Prefect's plain environment, same run.

Prints two ratios per workload of `benchmarks/workloads.py` (higher is better, 1.0 = as fast
as the baseline):
- render: `Template.render` (sandbox + render budgets) / a plain `ImmutableSandboxedEnvironment`
  render of the same template, as Prefect builds it;
- pipeline: `render_events` (context, render, json.loads, validation, defaults, related webhook) /
  the same steps written by hand on the plain environment without hooklab's budgets.
Each figure is the median of several alternating rounds, so drift hits both sides alike.

    python benchmarks/bench_pipeline.py [--workload NAME]...
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from uuid import uuid4

from jinja2 import ChainableUndefined
from jinja2.sandbox import ImmutableSandboxedEnvironment

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script or a module

from benchmarks.workloads import WORKLOADS, Workload
from hooklab.core.events import Event
from hooklab.core.pipeline import render_events
from hooklab.core.request import template_context
from hooklab.core.templates import compile_template
from hooklab.core.times import utcnow
from hooklab.core.webhooks import Webhook

ROUNDS = 7
CALLS = 3_000


def rate(work: Callable[[], object]) -> float:
    started = time.perf_counter()
    for _ in range(CALLS):
        work()
    return CALLS / (time.perf_counter() - started)


def median_ratio(candidate: Callable[[], object], baseline: Callable[[], object]) -> float:
    ratios = []
    for _ in range(ROUNDS):
        ratios.append(rate(candidate) / rate(baseline))
    return statistics.median(ratios)


def race(workload: Workload) -> None:
    request = workload.request(1)
    context = template_context(request).as_dict()
    plain_env = ImmutableSandboxedEnvironment(
        undefined=ChainableUndefined, extensions=["jinja2_humanize_extension.HumanizeExtension"]
    )
    plain = plain_env.from_string(workload.template)
    ours = compile_template(workload.template)
    assert ours.render(context) == plain.render(context)

    hook = Webhook(str(uuid4()), workload.name, workload.template, "slug", utcnow(), utcnow())

    def by_hand() -> object:
        data = json.loads(plain.render(template_context(request).as_dict()))
        data.setdefault("occurred", utcnow())
        data.setdefault("id", uuid4())
        return Event.model_validate(data)

    render_ratio = median_ratio(lambda: ours.render(context), lambda: plain.render(context))
    pipeline_ratio = median_ratio(lambda: render_events(hook, request), by_hand)
    print(f"{workload.name}:")
    print(f"  render with budgets / plain Prefect environment: {render_ratio:.2f}x")
    print(
        f"  render_events / hand-written pipeline without hooklab's extras: {pipeline_ratio:.2f}x"
    )


def main() -> int:
    options = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()))
    options.add_argument("--workload", choices=sorted(WORKLOADS), action="append")
    args = options.parse_args()
    for name in args.workload or WORKLOADS:
        race(WORKLOADS[name])
    return 0


if __name__ == "__main__":
    sys.exit(main())
