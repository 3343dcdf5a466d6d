"""The webhook: an opaque slug, a template, and the rules for rotating and toggling it (SPEC 1)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from hooklab.core.times import iso


def new_slug() -> str:
    """An opaque, random, URL-safe slug of 22 characters, as Prefect Cloud makes them."""
    return secrets.token_urlsafe(16)


@dataclass(frozen=True)
class Webhook:
    """A webhook as stored. Its URL is `<receiver base>/hooks/<slug>`."""

    id: str
    name: str
    template: str
    slug: str
    created: datetime
    updated: datetime
    description: str = ""
    enabled: bool = True
    service_account_id: str | None = None
    signature_preset: str | None = None
    signature_secret: str | None = field(default=None, repr=False)

    @property
    def resource_id(self) -> str:
        return f"prefect-cloud.webhook.{self.id}"

    @property
    def path(self) -> str:
        return f"/hooks/{self.slug}"

    def url(self, base: str) -> str:
        return base.rstrip("/") + self.path

    def related_resource(self) -> dict[str, str]:
        """How this webhook appears in `related` of every event it produces (SPEC 5.5)."""
        return {
            "prefect.resource.id": self.resource_id,
            "prefect.resource.role": "webhook",
            "prefect.resource.name": self.name,
        }

    def rotated(self, now: datetime) -> Webhook:
        return replace(self, slug=new_slug(), updated=now)

    def to_api(self, account: str, workspace: str) -> dict[str, Any]:
        """The JSON shape of Prefect Cloud's webhook API."""
        return {
            "id": self.id,
            "created": iso(self.created),
            "updated": iso(self.updated),
            "name": self.name,
            "description": self.description,
            "enabled": self.enabled,
            "template": self.template,
            "slug": self.slug,
            "service_account_id": self.service_account_id,
            "account": account,
            "workspace": workspace,
        }
