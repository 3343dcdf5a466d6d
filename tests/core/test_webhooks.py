"""The webhook model: opaque slugs, its related resource and its API shape (SPEC 1, 5.5, 10)."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

from hooklab.core.webhooks import Webhook, new_slug

CREATED = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)


def hook() -> Webhook:
    return Webhook("4f6b", "models", "{{ body|tojson }}", new_slug(), CREATED, CREATED)


def test_slugs_are_22_url_safe_random_characters() -> None:
    slugs = {new_slug() for _ in range(200)}
    assert len(slugs) == 200
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{22}", slug) for slug in slugs)


def test_url_is_the_receiver_base_plus_hooks_slug() -> None:
    webhook = hook()
    assert webhook.url("http://127.0.0.1:8000/") == f"http://127.0.0.1:8000/hooks/{webhook.slug}"


def test_related_resource_names_the_webhook_in_the_webhook_role() -> None:
    assert hook().related_resource() == {
        "prefect.resource.id": "prefect-cloud.webhook.4f6b",
        "prefect.resource.role": "webhook",
        "prefect.resource.name": "models",
    }


def test_rotating_changes_only_the_slug_and_the_update_time() -> None:
    webhook = hook()
    later = CREATED + timedelta(minutes=5)
    rotated = webhook.rotated(later)
    assert rotated.slug != webhook.slug
    assert rotated.updated == later
    assert (rotated.id, rotated.name, rotated.template, rotated.created) == (
        webhook.id, webhook.name, webhook.template, webhook.created,
    )  # fmt: skip


def test_api_shape_has_prefects_keys_and_hides_the_signature_secret() -> None:
    webhook = Webhook("4f6b", "models", "t", "slug", CREATED, CREATED, signature_secret="whsec_x")
    shape = webhook.to_api("acct", "ws")
    assert set(shape) == {
        "id", "created", "updated", "name", "description", "enabled", "template", "slug",
        "service_account_id", "account", "workspace",
    }  # fmt: skip
    assert shape["created"] == "2024-05-01T12:00:00.000000+00:00"
    assert "whsec_x" not in repr(webhook) and "whsec_x" not in str(shape)
