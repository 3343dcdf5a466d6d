"""The Prefect bridge: forward events to a Prefect API, read its events back as DataFrames, and
export, push and pull webhooks."""

from hooklab.prefect.client import Credentials, PrefectApi, PrefectError
from hooklab.prefect.deploy import export_webhook, pull_webhooks, push_webhook
from hooklab.prefect.events import read_events
from hooklab.prefect.forwarding import Forwarding, forward_history, forward_outcomes
from hooklab.prefect.replays import forward_replay

__all__ = [
    "Credentials",
    "Forwarding",
    "PrefectApi",
    "PrefectError",
    "export_webhook",
    "forward_history",
    "forward_outcomes",
    "forward_replay",
    "pull_webhooks",
    "push_webhook",
    "read_events",
]
