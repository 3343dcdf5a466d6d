"""Service-account API keys: shown once, stored only as a hash, compared in constant time."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from hooklab.core.request import HookRequest

KEY_PREFIX = "hlsa_"


def new_api_key() -> str:
    """A fresh service-account key. It is shown once; only its hash is kept."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_key(key: str) -> str:
    # Keys carry 256 random bits, so a plain digest is enough: there is nothing to brute-force.
    return hashlib.sha256(key.encode()).hexdigest()


def bearer_token(request: HookRequest) -> str | None:
    """The token of an `Authorization: Bearer <token>` header, if any."""
    return parse_bearer(request.all_headers.get("authorization"))


def parse_bearer(value: str | None) -> str | None:
    """The token of an `Authorization` header value of the form `Bearer <token>`, if any."""
    if not value:
        return None
    scheme, _, token = value.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def key_matches(presented: str | None, key_hash: str | None) -> bool:
    """Whether a presented key belongs to the account whose key hash is given."""
    if presented is None or key_hash is None:
        return False
    return hmac.compare_digest(hash_key(presented), key_hash)
