"""Which parts of a request are credentials: never stored, or masked on export."""

from __future__ import annotations

import pytest

from hooklab.core.credentials import looks_secret, masked_query
from hooklab.core.request import HookRequest


@pytest.mark.parametrize(
    "name", ["X-Auth-Token", "x-access-token", "apiKey", "X-Client-Secret", "Session-Id"]
)
def test_names_that_mark_a_secret(name: str) -> None:
    assert looks_secret(name)


@pytest.mark.parametrize(
    "name", ["X-Hub-Signature-256", "Stripe-Signature", "Content-Type", "X-GitHub-Event"]
)
def test_signatures_and_ordinary_headers_are_not_secrets(name: str) -> None:
    assert not looks_secret(name)


def test_query_secrets_are_masked_and_the_rest_kept_as_sent() -> None:
    assert masked_query("page=2&access_token=a&sig=b&X-Amz-Signature=c") == (
        "page=2&access_token=REDACTED&sig=REDACTED&X-Amz-Signature=REDACTED"
    )
    assert masked_query("a=1&a=2&b=%20") == "a=1&a=2&b=%20"  # untouched when nothing is secret


def test_credential_headers_are_dropped_before_storing_but_shown_to_the_template() -> None:
    request = HookRequest.fake(
        "POST",
        headers={"Cookie": "c", "X-API-KEY": "k", "Proxy-Authorization": "p", "X-Other": "o"},
    )
    assert request.visible_headers["x-api-key"] == "k"
    assert [name for name, _ in request.without_secrets().headers] == ["X-Other"]
    assert request.visible_headers.stored() == {"X-Other": "o"}
