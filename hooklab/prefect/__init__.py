"""The Prefect bridge (SPEC 11): forward events to a Prefect API, read its events back as
DataFrames, and export, push and pull webhooks."""

from hooklab.core.outcome import Outcome
from hooklab.history.replay import forward_with
from hooklab.prefect.client import Credentials, PrefectApi, PrefectError
from hooklab.prefect.deploy import export_webhook, pull_webhooks, push_webhook
from hooklab.prefect.events import read_events
from hooklab.prefect.forwarding import Forwarding, forward_history, forward_outcomes

__all__ = [
    "Credentials",
    "Forwarding",
    "PrefectApi",
    "PrefectError",
    "export_webhook",
    "forward_history",
    "forward_outcomes",
    "pull_webhooks",
    "push_webhook",
    "read_events",
]


def _forward_replay(
    outcomes: list[Outcome], url: str, *, api_key: str | None = None, auth_string: str | None = None
) -> int:
    return forward_outcomes(outcomes, url, credentials=Credentials.resolve(api_key, auth_string))


forward_with(_forward_replay)  # ReplayResult.forward (a layer below) sends through this bridge
