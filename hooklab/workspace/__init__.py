"""The Workspace: webhooks, accounts and history in one store; the facade shells use."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path
from typing import Any

from hooklab.core import keys, signatures
from hooklab.core.errors import (
    AmbiguousWebhook,
    EnforcementError,
    InvalidInput,
    ServiceAccountNotFound,
    WebhookNotFound,
)
from hooklab.core.events import uuid7
from hooklab.core.outcome import IdSource, Outcome, Reason, failure, not_found
from hooklab.core.pipeline import DEFAULT_BUDGETS, Budgets, render_events
from hooklab.core.request import HookRequest
from hooklab.core.templates import compile_template
from hooklab.core.times import Clock, utcnow
from hooklab.core.webhooks import Webhook, new_slug
from hooklab.store import is_postgres, open_store
from hooklab.store.batches import destination_url
from hooklab.store.contract import (
    Destination,
    Feed,
    Outbox,
    ServiceAccount,
    Store,
    StoredRequest,
    StoreError,
    Writer,
)
from hooklab.store.filters import HistoryFilter
from hooklab.workspace.homes import DATABASE, default_home, store_target
from hooklab.workspace.reads import HistoryReads, Moment

__all__ = [
    "DATABASE",
    "AmbiguousWebhook",
    "EnforcementError",
    "HistoryFilter",
    "Moment",
    "ServiceAccountNotFound",
    "StoreError",
    "StoredRequest",
    "WebhookNotFound",
    "Workspace",
    "default_home",
    "store_target",
]

ENFORCEMENT_SETTING = "enforce_service_accounts"
_UNSET: Any = object()


class Workspace(HistoryReads):
    """Everything hooklab keeps, in one store: a SQLite file (the default, `:memory:` too),
    or a PostgreSQL database named by its URL (`postgresql://user@host/db`), which several
    servers and notebooks may share.

    >>> ws = Workspace(":memory:")
    >>> template = '{"event": "ping", "resource": {"prefect.resource.id": "x"}}'
    >>> hook = ws.create_webhook("demo", template)
    >>> ws.receive(hook.slug, HookRequest.fake()).status
    204
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        home: str | os.PathLike[str] | None = None,
        clock: Clock = utcnow,
        new_id: IdSource = uuid7,
        budgets: Budgets = DEFAULT_BUDGETS,
    ) -> None:
        target = store_target(path)
        self.store: Store = open_store(target)
        self.store_url = target  # may hold a password: pass it on, never show it
        # Where the store is, for a person (a PostgreSQL URL without its password).
        self.path = self.store.location
        # The folder for what is not in the store (the receiver's port, the admin key): the
        # SQLite file's, or the one given; None for `:memory:` and a store without a home.
        if home is not None:
            self.home: Path | None = Path(home)
        elif target == ":memory:" or is_postgres(target):
            self.home = None
        else:
            self.home = Path(target).resolve().parent
        self.clock = clock
        self.new_id = new_id
        self.budgets = budgets

    def __repr__(self) -> str:
        return f"Workspace({self.path!r})"

    @property
    def shared(self) -> bool:
        """Whether several servers may serve this store at once (PostgreSQL)."""
        return self.store.shared

    def close(self) -> None:
        self.store.close()

    # Identity of the one local account and workspace (SPEC 10)

    @property
    def account_id(self) -> str:
        return self._stable_id("account_id")

    @property
    def workspace_id(self) -> str:
        return self._stable_id("workspace_id")

    def _stable_id(self, key: str) -> str:
        value = self.store.setting(key)
        if value is None and self.store.read_only is not None:
            # A home that cannot be written, and never had one: the same stand-in every read.
            return str(uuid.uuid5(uuid.NAMESPACE_URL, f"{os.path.abspath(self.path)}#{key}"))
        if value is None:
            value = str(self.new_id())
            self.store.set_setting(key, value)
        return value

    # Webhooks

    def create_webhook(
        self,
        name: str,
        template: str,
        description: str = "",
        *,
        enabled: bool = True,
        service_account_id: str | None = None,
    ) -> Webhook:
        """Create a webhook with a fresh random slug. The template is checked first."""
        _check_name(name)
        compile_template(template)
        if service_account_id is not None:
            self.get_service_account(service_account_id)
        elif self.enforcement:
            raise EnforcementError(
                "Service account enforcement is on: a new webhook must name a service account"
            )
        now = self.clock()
        hook = Webhook(
            id=str(self.new_id()),  # seeded in deterministic mode
            name=name,
            description=description,
            template=template,
            slug=new_slug(),
            created=now,
            updated=now,
            enabled=enabled,
            service_account_id=service_account_id,
        )
        self.store.insert_webhook(hook)
        return hook

    def get_webhook(self, key: str) -> Webhook:
        """A webhook by id, or else by name, or else by slug. A name that several webhooks
        share raises `AmbiguousWebhook`, listing their ids."""
        key = str(key)
        hook = self.store.webhook_by("id", key)
        if hook is not None:
            return hook
        named = self.store.webhooks_named(key)
        if len(named) > 1:
            raise AmbiguousWebhook(key, [hook.id for hook in named])
        if named:
            return named[0]
        hook = self.store.webhook_by("slug", key)
        if hook is not None:
            return hook
        raise WebhookNotFound(key)

    def resolve_webhook(self, ref: str, *, deleted: bool = False) -> str:
        """The id a person means by `ref`: a webhook's id, name or slug, or (with `deleted`)
        the id of a deleted webhook whose history stays. The one place references are read;
        anything else raises `WebhookNotFound` ("Webhook 'nope' not found.")."""
        try:
            return self.get_webhook(ref).id
        except WebhookNotFound:
            pass
        if deleted:
            try:
                webhook_id = str(uuid.UUID(ref))
            except ValueError:
                webhook_id = ""
            if webhook_id and self.store.has_history(webhook_id):
                return webhook_id
        raise WebhookNotFound(ref, reference=True, history=deleted)

    def list_webhooks(self) -> list[Webhook]:
        return self.store.webhooks()

    def update_webhook(
        self,
        key: str,
        *,
        name: str | None = None,
        description: str | None = None,
        template: str | None = None,
        enabled: bool | None = None,
        service_account_id: str | None = _UNSET,
        signature_preset: str | None = _UNSET,
        signature_secret: str | None = _UNSET,
    ) -> Webhook:
        """Change any subset of a webhook's fields; what is not given stays as it is."""
        hook = self.get_webhook(key)
        changes: dict[str, Any] = {}
        if name is not None:
            _check_name(name)
            changes["name"] = name
        if description is not None:
            changes["description"] = description
        if template is not None:
            compile_template(template)
            changes["template"] = template
        if service_account_id is not _UNSET:
            if service_account_id is not None:
                self.get_service_account(service_account_id)
            changes["service_account_id"] = service_account_id
        if signature_preset is not _UNSET:
            signatures.check_preset(signature_preset)
            changes["signature_preset"] = signature_preset
        if signature_secret is not _UNSET:
            changes["signature_secret"] = signature_secret
        if enabled is not None:
            changes["enabled"] = enabled
        updated = replace(hook, **changes, updated=self.clock())
        if updated.signature_preset is not None:
            signatures.check_secret(updated.signature_secret)
        if updated.service_account_id is None and self.enforcement:
            if enabled:
                raise EnforcementError(
                    "Service account enforcement is on: this webhook can be enabled only "
                    "after it is given a service account"
                )
            updated = replace(updated, enabled=False)
        self.store.save_webhook(updated)
        return updated

    def toggle_webhook(self, key: str) -> Webhook:
        hook = self.get_webhook(key)
        return self.update_webhook(hook.id, enabled=not hook.enabled)

    def rotate_webhook(self, key: str) -> Webhook:
        """Give the webhook a new slug; the old URL stops answering at once."""
        hook = self.get_webhook(key).rotated(self.clock())
        self.store.save_webhook(hook)
        return hook

    def delete_webhook(self, key: str) -> Webhook:
        """Delete a webhook. What it captured stays in the history, under its id."""
        hook = self.get_webhook(key)
        self.store.delete_webhook(hook.id)
        return hook

    # Service accounts and enforcement (SPEC 8)

    def create_service_account(self, name: str) -> tuple[ServiceAccount, str]:
        """Create an account; returns it with its API key, which is never shown again."""
        _check_name(name)
        account = ServiceAccount(str(self.new_id()), name, self.clock())
        key = keys.new_api_key()
        self.store.insert_service_account(account, keys.hash_key(key))
        return account, key

    def list_service_accounts(self) -> list[ServiceAccount]:
        return self.store.service_accounts()

    def get_service_account(self, key: str) -> ServiceAccount:
        for account in self.store.service_accounts():
            if key in (account.id, account.name):
                return account
        raise ServiceAccountNotFound(key)

    def delete_service_account(self, key: str) -> list[str]:
        """Delete an account and its webhooks, as Prefect does; returns the webhooks' ids."""
        account = self.get_service_account(key)
        return self.store.delete_service_account(account.id)

    @property
    def enforcement(self) -> bool:
        return self.store.setting(ENFORCEMENT_SETTING, "off") == "on"

    def set_enforcement(self, on: bool) -> int:
        """Switch enforcement; switching it on disables every webhook without an account.
        Returns how many webhooks were disabled."""
        self.store.set_setting(ENFORCEMENT_SETTING, "on" if on else "off")
        return self.store.disable_webhooks_without_account(self.clock()) if on else 0

    # Receiving

    def process(
        self,
        slug: str,
        request: HookRequest,
        *,
        too_large: int | None = None,
        check_other_writers: bool = True,
    ) -> Outcome:
        """Decide what a request to `/hooks/<slug>` produces, without storing anything.

        `too_large`: the receiver did not read a body over this limit; the request then fails
        after the slug and the credentials are checked. `check_other_writers`: see
        `webhook_by_slug`.
        """
        hook = self.webhook_by_slug(slug, check_other_writers=check_other_writers)
        if hook is None:
            return not_found(request)
        refused = self.authenticate(hook, request)
        if refused is None and not hook.enabled:
            refused = Reason.DISABLED, "Webhook is disabled"
        if refused is None and too_large is not None:
            limit = f"Request body is larger than the limit of {too_large} bytes"
            refused = Reason.TOO_LARGE, limit
        if refused is not None:
            reason, error = refused
            return failure(hook, request, reason, error, clock=self.clock, new_id=self.new_id)
        return render_events(
            hook, request, clock=self.clock, new_id=self.new_id, budgets=self.budgets
        )

    def authenticate(self, hook: Webhook, request: HookRequest) -> tuple[Reason, str] | None:
        """Why a request may not use this webhook (a reason and its text), or None when it may."""
        if hook.service_account_id is not None:
            presented = keys.bearer_token(request)
            expected = self.store.directory(fresh=False).key_hashes.get(hook.service_account_id)
            if not keys.key_matches(presented, expected):
                if presented is None:
                    missing = "Missing API key: this webhook requires 'Authorization: Bearer <key>'"
                    return Reason.UNAUTHORIZED, missing
                return Reason.UNAUTHORIZED, "Invalid API key for this webhook's service account"
        if hook.signature_preset is not None:
            if not signatures.strong_enough(hook.signature_secret):  # set before the minimum
                return (
                    Reason.BAD_SIGNATURE,
                    "This webhook's signature secret is too short: set a new one",
                )
            refused = signatures.verify(
                hook.signature_preset,
                hook.signature_secret or "",
                request.all_headers,
                request.body,
                now=self.clock().timestamp(),
            )
            if refused is not None:
                return Reason.BAD_SIGNATURE, refused
        return None

    def webhook_by_slug(self, slug: str, *, check_other_writers: bool = True) -> Webhook | None:
        """The webhook answering at `/hooks/<slug>`; a rotated or deleted slug is gone at once.

        The store keeps its webhooks in memory: changes made through it at once, changes by
        other processes as soon as it looks for them (SQLite: when asked, which the receiver
        does once per turn of its event loop, `check_other_writers=False` for the rest;
        PostgreSQL: as they are notified).
        """
        return self.store.directory(fresh=check_other_writers).webhooks.get(slug)

    def webhook_by_id(self, webhook_id: str) -> Webhook | None:
        """The webhook with this id, or None (no name or slug is tried)."""
        return self.store.webhook_by("id", webhook_id)

    def import_webhook(self, hook: Webhook) -> None:
        """Store a webhook as it is, id, slug and template unchecked (a copy of one made
        elsewhere, or a case's)."""
        self.store.insert_webhook(hook)

    def count_up(self, key: str) -> int:
        """A counter kept in the store: its value before this call added one; no two callers,
        in any process, get the same."""
        return self.store.count_up(key)

    def record(self, outcomes: Iterable[Outcome]) -> int:
        """Store requests with their outcomes in one transaction. 404s are not stored."""
        items = [o for o in outcomes if o.status != 404 and o.request is not None]
        return self.store.record(items) if items else 0

    def receive(self, slug: str, request: HookRequest) -> Outcome:
        """Process one request and store it with its outcome, durably, before returning.

        Never raises for bad input: errors become a failure event and a 400 or 401.
        """
        if self.store.has_request(request.id):
            # The same request object sent again (a cell run twice) is a new delivery.
            request = replace(request, id=str(self.new_id()))
        outcome = self.process(slug, request)
        self.record([outcome])
        return outcome

    # Forwarding to Prefect (SPEC 11)

    def forward_to(self, url: str) -> Destination:
        """Forward every event stored from now on, failed ones included, to a Prefect API.

        Only the URL is recorded (credentials come from the environment of whatever delivers:
        `hooklab serve`, a notebook, or `hooklab.prefect.Forwarding(ws).start()`)."""
        outbox = self.store.outbox()
        try:
            return outbox.add(destination_url(url), now=self.clock())
        finally:
            outbox.close()

    def stop_forwarding(self, url: str) -> int:
        """Stop forwarding to a Prefect API: remove the destination from the store (every
        server forwarding this store stops sending there within seconds) with the events it
        still had pending; returns how many were dropped. Raises `InvalidInput` when this
        home does not forward there."""
        key = destination_url(url)
        outbox = self.store.outbox()
        try:
            dropped = outbox.remove(key)
        finally:
            outbox.close()
        if dropped is None:
            raise InvalidInput(f"not forwarding to {key} (`hooklab forward status` lists where)")
        return dropped

    def forwarding(self) -> list[Destination]:
        """Every Prefect API this home forwards to, with what is pending, oldest first."""
        outbox = self.store.outbox()
        try:
            return outbox.destinations()
        finally:
            outbox.close()

    def outbox(self) -> Outbox:
        """The forwarding queue, on a connection of its own (for a delivery thread)."""
        return self.store.outbox()

    def writer(self) -> Writer:
        """How a server writes batches of what it receives (see `GroupCommit`)."""
        return self.store.writer()

    def feed(self, position: int, *, webhook: str | None = None, limit: int = 20) -> Feed:
        """Events stored after `position` (0: the start) by any process, for a live feed: the
        new position, how many came, how many failed, and the newest `limit` of them."""
        return self.store.feed_after(position, webhook_id=webhook, limit=limit)

    def count(self, what: str = "events") -> int:
        """How many `events`, `requests`, `webhooks` or `service_accounts` are stored."""
        return self.store.count(what)


def _check_name(name: str) -> None:
    if not isinstance(name, str) or not name.strip():
        raise InvalidInput("A webhook or service account needs a non-empty name")
