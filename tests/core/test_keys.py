"""Service-account keys: shown once, kept as a hash, read from a Bearer header (SPEC 8)."""

from __future__ import annotations

import pytest

from hooklab.core.keys import bearer_token, hash_key, key_matches, new_api_key
from hooklab.core.request import HookRequest


def test_keys_are_long_random_and_distinct() -> None:
    keys = {new_api_key() for _ in range(50)}
    assert len(keys) == 50
    assert all(key.startswith("hlsa_") and len(key) > 40 for key in keys)


def test_only_a_hash_is_kept_and_it_matches_the_key() -> None:
    key = new_api_key()
    stored = hash_key(key)
    assert key not in stored
    assert key_matches(key, stored)
    assert not key_matches(key + "x", stored)
    assert not key_matches(None, stored)
    assert not key_matches(key, None)


@pytest.mark.parametrize(
    ("header", "token"),
    [
        ("Bearer abc", "abc"),
        ("bearer   abc  ", "abc"),
        ("Basic abc", None),
        ("Bearer", None),
        ("Bearer   ", None),
        ("", None),
    ],
)
def test_bearer_token_is_read_from_the_authorization_header(header: str, token: str | None) -> None:
    assert bearer_token(HookRequest.fake(headers={"authorization": header})) == token


def test_no_authorization_header_means_no_token() -> None:
    assert bearer_token(HookRequest.fake()) is None
