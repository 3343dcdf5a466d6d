"""HMAC signature presets for senders that cannot send a Bearer key (SPEC 9, an extension).

Each preset checks the raw body bytes against the secret set on the webhook, in constant time,
and refuses signatures whose timestamp lies outside a tolerance of the (injectable) clock.
A refusal is a one-line reason that never contains the secret. A webhook's secret has at least
`MIN_SECRET` characters: an empty or short one would let anyone sign (or guess it from one
signed request), so it is refused when set, and a webhook that has one lets nothing in.

>>> headers = sign("github", "s3cret", b'{"zen": "hi"}', timestamp=0)
>>> verify("github", "s3cret", headers, b'{"zen": "hi"}', now=0) is None
True
>>> verify("github", "wrong", headers, b'{"zen": "hi"}', now=0)
'Invalid GitHub signature (X-Hub-Signature-256)'
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Callable, Mapping

from hooklab.core.request import Headers

PRESETS = ("github", "stripe", "slack", "standard-webhooks")
# The headers each preset reads (lowercased): a request kept to be checked again keeps them.
SIGNATURE_HEADERS: dict[str, tuple[str, ...]] = {
    "github": ("x-hub-signature-256",),
    "stripe": ("stripe-signature",),
    "slack": ("x-slack-signature", "x-slack-request-timestamp"),
    "standard-webhooks": ("webhook-id", "webhook-timestamp", "webhook-signature"),
}
DEFAULT_TOLERANCE = 300  # seconds, as Stripe, Slack and Standard Webhooks recommend
# Characters, spaces at either end not counted. The secrets senders issue are longer (Slack's
# 32, Stripe's and Standard Webhooks' `whsec_` ones more); a person's GitHub secret should be.
MIN_SECRET = 16


class UnknownPreset(ValueError):
    def __init__(self, preset: str) -> None:
        super().__init__(f"Unknown signature preset {preset!r}: choose one of {', '.join(PRESETS)}")


class WeakSecret(ValueError):
    """A signature secret too short to be one (its text never repeats the secret)."""

    def __init__(self, secret: str | None) -> None:
        size = len((secret or "").strip())
        what = "is empty" if size == 0 else f"has only {size} characters"
        super().__init__(
            f"The signature secret {what}: a secret needs at least {MIN_SECRET} characters "
            "(use the one the sender issues, or a long random one)"
        )


def strong_enough(secret: str | None) -> bool:
    """True when `secret` is long enough to check signatures with.

    >>> strong_enough(""), strong_enough("It's a Secret to Everybody")
    (False, True)
    """
    return secret is not None and len(secret.strip()) >= MIN_SECRET


def check_secret(secret: str | None) -> None:
    """Raise `WeakSecret` unless `secret` is `strong_enough`."""
    if not strong_enough(secret):
        raise WeakSecret(secret)


def check_preset(preset: str | None) -> None:
    """Raise `UnknownPreset` unless `preset` is None or one of `PRESETS`."""
    if preset is not None and preset not in PRESETS:
        raise UnknownPreset(preset)


def _hmac(key: bytes, message: bytes) -> bytes:
    return hmac.new(key, message, hashlib.sha256).digest()


def _any_matches(expected: bytes, candidates: list[str], decode: Callable[[str], bytes]) -> bool:
    found = False
    for candidate in candidates:
        try:
            presented = decode(candidate)
        except (ValueError, binascii.Error):
            continue
        # Check every candidate, so the time taken does not reveal which one matched.
        found |= hmac.compare_digest(expected, presented)
    return found


def _timestamp(text: str | None, name: str, now: float, tolerance: float) -> tuple[str, str | None]:
    """The timestamp as sent, and why it is refused (None when it is fresh)."""
    if not text:
        return "", f"Missing {name}"
    try:
        sent = int(text.strip())
    except ValueError:
        return text, f"Invalid {name}: not a Unix time in seconds"
    if abs(now - sent) > tolerance:
        return text, f"Stale signature: {name} is more than {tolerance:g} s from now"
    return text.strip(), None


def _github(secret: str, headers: Headers, body: bytes, now: float, tolerance: float) -> str | None:
    value = headers.get("x-hub-signature-256")
    if not value:
        return "Missing X-Hub-Signature-256 header"
    scheme, _, digest = value.strip().partition("=")
    expected = _hmac(secret.encode(), body)
    if scheme != "sha256" or not _any_matches(expected, [digest], bytes.fromhex):
        return "Invalid GitHub signature (X-Hub-Signature-256)"
    return None


def _stripe(secret: str, headers: Headers, body: bytes, now: float, tolerance: float) -> str | None:
    value = headers.get("stripe-signature")
    if not value:
        return "Missing Stripe-Signature header"
    parts = [item.strip().partition("=") for item in value.split(",")]
    stamps = [v for k, _, v in parts if k == "t"]
    stamp, stale = _timestamp(
        stamps[0] if stamps else None, "Stripe-Signature timestamp", now, tolerance
    )
    if stale:
        return stale
    expected = _hmac(secret.encode(), stamp.encode() + b"." + body)
    if not _any_matches(expected, [v for k, _, v in parts if k == "v1"], bytes.fromhex):
        return "Invalid Stripe signature (Stripe-Signature)"
    return None


def _slack(secret: str, headers: Headers, body: bytes, now: float, tolerance: float) -> str | None:
    value = headers.get("x-slack-signature")
    if not value:
        return "Missing X-Slack-Signature header"
    stamp, stale = _timestamp(
        headers.get("x-slack-request-timestamp"), "X-Slack-Request-Timestamp", now, tolerance
    )
    if stale:
        return stale
    expected = _hmac(secret.encode(), b"v0:" + stamp.encode() + b":" + body)
    version, _, digest = value.strip().partition("=")
    if version != "v0" or not _any_matches(expected, [digest], bytes.fromhex):
        return "Invalid Slack signature (X-Slack-Signature)"
    return None


def standard_webhooks_key(secret: str) -> bytes:
    """The HMAC key of a Standard Webhooks secret: `whsec_<base64>` decoded."""
    encoded = secret.removeprefix("whsec_")
    try:
        return base64.b64decode(encoded, validate=True)
    except (ValueError, binascii.Error):
        # Not base64: some senders use the text itself as the key.
        return secret.encode()


def _standard(
    secret: str, headers: Headers, body: bytes, now: float, tolerance: float
) -> str | None:
    value = headers.get("webhook-signature")
    message_id = headers.get("webhook-id")
    if not message_id:
        return "Missing webhook-id header"
    if not value:
        return "Missing webhook-signature header"
    stamp, stale = _timestamp(headers.get("webhook-timestamp"), "webhook-timestamp", now, tolerance)
    if stale:
        return stale
    signed = message_id.encode() + b"." + stamp.encode() + b"." + body
    expected = _hmac(standard_webhooks_key(secret), signed)
    candidates = [
        digest
        for version, _, digest in (s.partition(",") for s in value.split())
        if version == "v1"
    ]
    if not _any_matches(expected, candidates, base64.b64decode):
        return "Invalid Standard Webhooks signature (webhook-signature)"
    return None


_VERIFIERS: dict[str, Callable[[str, Headers, bytes, float, float], str | None]] = {
    "github": _github,
    "stripe": _stripe,
    "slack": _slack,
    "standard-webhooks": _standard,
}


def verify(
    preset: str,
    secret: str,
    headers: Mapping[str, str] | Headers,
    body: bytes,
    *,
    now: float,
    tolerance: float = DEFAULT_TOLERANCE,
) -> str | None:
    """Why the request's signature is refused, or None when it is valid.

    `now` is the current Unix time in seconds (from the workspace's clock).
    """
    check_preset(preset)
    view = headers if isinstance(headers, Headers) else Headers(headers.items())
    return _VERIFIERS[preset](secret, view, body, now, tolerance)


def sign(
    preset: str, secret: str, body: bytes, *, timestamp: int, message_id: str = "msg_hooklab"
) -> dict[str, str]:
    """The headers a sender using `preset` would add: for tests, notebooks and `hooklab send`."""
    check_preset(preset)
    stamp = str(int(timestamp))
    if preset == "github":
        return {"X-Hub-Signature-256": "sha256=" + _hmac(secret.encode(), body).hex()}
    if preset == "stripe":
        digest = _hmac(secret.encode(), stamp.encode() + b"." + body).hex()
        return {"Stripe-Signature": f"t={stamp},v1={digest}"}
    if preset == "slack":
        digest = _hmac(secret.encode(), b"v0:" + stamp.encode() + b":" + body).hex()
        return {"X-Slack-Request-Timestamp": stamp, "X-Slack-Signature": f"v0={digest}"}
    signed = message_id.encode() + b"." + stamp.encode() + b"." + body
    digest = base64.b64encode(_hmac(standard_webhooks_key(secret), signed)).decode()
    return {
        "webhook-id": message_id,
        "webhook-timestamp": stamp,
        "webhook-signature": f"v1,{digest}",
    }
