"""A replay's events, sent to a Prefect API as new events."""

from __future__ import annotations

from typing import TYPE_CHECKING

from hooklab.prefect.client import Credentials
from hooklab.prefect.forwarding import forward_outcomes

if TYPE_CHECKING:
    from hooklab.history.replay import ReplayResult

__all__ = ["forward_replay"]


def forward_replay(
    result: ReplayResult,
    url: str,
    *,
    api_key: str | None = None,
    auth_string: str | None = None,
) -> int:
    """Send a replay's events, failures included, to the Prefect API at `url`; returns how
    many, once Prefect has stored them all:
    `forward_replay(hooklab.replay(ws.captured("models"), template), "http://127.0.0.1:4200/api")`.

    The events carry the replay's own ids, which are new: a Prefect that has the stored
    originals keeps both, and each new replay adds more. Sending the same result twice sends
    the same ids, which Prefect keeps once. Credentials as `Credentials.resolve` takes them:
    `api_key` or `auth_string`, else `PREFECT_API_KEY` or `PREFECT_API_AUTH_STRING`.
    """
    credentials = Credentials.resolve(api_key, auth_string)
    return forward_outcomes(result.outcomes, url, credentials=credentials)
