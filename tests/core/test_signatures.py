"""Signature presets: valid, wrong and stale signatures, as functions and over loopback HTTP."""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import datetime, timezone
from pathlib import Path

import pytest
from receiver_helpers import run, send, serving, stored_events

from hooklab.core.signatures import PRESETS, UnknownPreset, sign, verify
from hooklab.workspace import Workspace

NOW = 1_700_000_000
BODY = b'{"action": "opened", "number": 7}'
SECRETS = {
    "github": "a-github-secret-1234",
    "stripe": "whsec_stripe_example",
    "slack": "8f742231b10e8888abcd99yyyzzz85a5",
    "standard-webhooks": "whsec_" + base64.b64encode(b"standard-key-bytes").decode(),
}
TEMPLATE = '{"event": "signed", "resource": {"prefect.resource.id": "sender.{{ body.number }}"}}'


def test_github_signature_is_hmac_sha256_of_the_raw_body() -> None:
    expected = hmac.new(b"gh-secret", BODY, hashlib.sha256).hexdigest()
    assert sign("github", "gh-secret", BODY, timestamp=NOW) == {
        "X-Hub-Signature-256": f"sha256={expected}"
    }


def test_stripe_slack_and_standard_webhooks_sign_what_their_docs_say() -> None:
    stripe = hmac.new(b"k", f"{NOW}.".encode() + BODY, hashlib.sha256).hexdigest()
    assert sign("stripe", "k", BODY, timestamp=NOW)["Stripe-Signature"] == f"t={NOW},v1={stripe}"
    slack = hmac.new(b"k", f"v0:{NOW}:".encode() + BODY, hashlib.sha256).hexdigest()
    assert sign("slack", "k", BODY, timestamp=NOW)["X-Slack-Signature"] == f"v0={slack}"
    key = b"standard-key-bytes"
    standard = hmac.new(key, f"msg_1.{NOW}.".encode() + BODY, hashlib.sha256).digest()
    headers = sign(
        "standard-webhooks", SECRETS["standard-webhooks"], BODY, timestamp=NOW, message_id="msg_1"
    )
    assert headers["webhook-signature"] == "v1," + base64.b64encode(standard).decode()


@pytest.mark.parametrize("preset", PRESETS)
def test_a_valid_signature_passes(preset: str) -> None:
    headers = sign(preset, SECRETS[preset], BODY, timestamp=NOW)
    assert verify(preset, SECRETS[preset], headers, BODY, now=NOW + 10) is None


@pytest.mark.parametrize("preset", PRESETS)
def test_a_wrong_secret_or_a_changed_body_fails(preset: str) -> None:
    headers = sign(preset, "not-the-secret", BODY, timestamp=NOW)
    reason = verify(preset, SECRETS[preset], headers, BODY, now=NOW)
    assert reason is not None and reason.startswith("Invalid")
    good = sign(preset, SECRETS[preset], BODY, timestamp=NOW)
    assert verify(preset, SECRETS[preset], good, BODY + b" ", now=NOW) is not None
    assert SECRETS[preset] not in (reason or "")


@pytest.mark.parametrize("preset", ["stripe", "slack", "standard-webhooks"])
def test_a_stale_signature_fails_past_the_tolerance(preset: str) -> None:
    headers = sign(preset, SECRETS[preset], BODY, timestamp=NOW - 301)
    reason = verify(preset, SECRETS[preset], headers, BODY, now=NOW)
    assert reason is not None and reason.startswith("Stale signature")
    assert verify(preset, SECRETS[preset], headers, BODY, now=NOW, tolerance=600) is None


# Each header a sender adds, and the reason its absence gives: that header, and no other.
MISSING = {
    ("github", "X-Hub-Signature-256"): "Missing X-Hub-Signature-256 header",
    ("stripe", "Stripe-Signature"): "Missing Stripe-Signature header",
    ("slack", "X-Slack-Signature"): "Missing X-Slack-Signature header",
    ("slack", "X-Slack-Request-Timestamp"): "Missing X-Slack-Request-Timestamp",
    ("standard-webhooks", "webhook-id"): "Missing webhook-id header",
    ("standard-webhooks", "webhook-timestamp"): "Missing webhook-timestamp",
    ("standard-webhooks", "webhook-signature"): "Missing webhook-signature header",
}


def test_every_header_a_sender_adds_has_its_missing_reason() -> None:
    added = {(p, name) for p in PRESETS for name in sign(p, SECRETS[p], BODY, timestamp=NOW)}
    assert added == set(MISSING)


@pytest.mark.parametrize(("preset", "header"), sorted(MISSING))
def test_a_missing_header_is_named(preset: str, header: str) -> None:
    signed = sign(preset, SECRETS[preset], BODY, timestamp=NOW)
    rest = {key: value for key, value in signed.items() if key != header}
    assert verify(preset, SECRETS[preset], rest, BODY, now=NOW) == MISSING[preset, header]


def test_any_of_several_signatures_may_match() -> None:
    good = sign("stripe", "k", BODY, timestamp=NOW)["Stripe-Signature"]
    rotated = f"t={NOW},v1={'0' * 64},{good.split(',')[1]}"
    assert verify("stripe", "k", {"Stripe-Signature": rotated}, BODY, now=NOW) is None
    headers = sign("standard-webhooks", "whsec_AAAA", BODY, timestamp=NOW)
    headers["webhook-signature"] = "v1,bm9wZQ== " + headers["webhook-signature"]
    assert verify("standard-webhooks", "whsec_AAAA", headers, BODY, now=NOW) is None


def test_an_unknown_preset_is_refused_when_set(tmp_path: Path) -> None:
    ws = Workspace(tmp_path / "hooklab.db")
    hook = ws.create_webhook("x", TEMPLATE)
    with pytest.raises(UnknownPreset, match="github, stripe, slack, standard-webhooks"):
        ws.update_webhook(hook.id, signature_preset="gitlab", signature_secret="s")
    ws.close()


@pytest.mark.parametrize("preset", PRESETS)
def test_over_http_valid_passes_wrong_and_stale_are_401(tmp_path: Path, preset: str) -> None:
    clock_now = datetime.fromtimestamp(NOW, timezone.utc)
    ws = Workspace(tmp_path / "hooklab.db", clock=lambda: clock_now)
    secret = SECRETS[preset]
    hook = ws.create_webhook("signed", TEMPLATE)
    ws.update_webhook(hook.id, signature_preset=preset, signature_secret=secret)
    cases = {
        "valid": sign(preset, secret, BODY, timestamp=NOW - 5),
        "wrong": sign(preset, "guess", BODY, timestamp=NOW - 5),
        "stale": sign(preset, secret, BODY, timestamp=NOW - 3600),
    }

    async def scenario() -> dict[str, int]:
        async with serving(ws, verbose=True) as receiver:
            url = receiver.webhook_url(hook)
            statuses = {}
            for name, headers in cases.items():
                headers = {**headers, "Content-Type": "application/json"}
                reply = await send(url, "POST", body=BODY, headers=headers)
                assert secret.encode() not in reply.body
                statuses[name] = reply.status
            return statuses

    expected_stale = 204 if preset == "github" else 401  # GitHub signs no timestamp
    assert run(scenario()) == {"valid": 204, "wrong": 401, "stale": expected_stale}
    failures = stored_events(ws, failed=True)
    assert all(secret not in repr(event) for event in failures)
    assert stored_events(ws, failed=False)[0]["resource"]["prefect.resource.id"] == "sender.7"
    ws.close()


def test_a_secret_too_short_to_be_one_is_refused_in_one_line(tmp_path: Path) -> None:
    from hooklab.core.signatures import WeakSecret

    ws = Workspace(tmp_path / "hooklab.db")
    hook = ws.create_webhook("x", TEMPLATE)
    for secret in ["", "short"]:
        with pytest.raises(WeakSecret) as weak:
            ws.update_webhook(hook.id, signature_preset="github", signature_secret=secret)
        assert "at least 16 characters" in str(weak.value) and "\n" not in str(weak.value)
    with pytest.raises(WeakSecret, match="is empty"):  # a preset with no secret at all
        ws.update_webhook(hook.id, signature_preset="stripe")
    assert ws.get_webhook(hook.id).signature_preset is None
    ws.close()
