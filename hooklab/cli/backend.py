"""Where the CLI's management commands go: the local home directly, or a running hooklab API.

Both sides speak the API's JSON (SPEC 10). The API's error answers arrive as `ApiError`s, the
local home's as the Workspace's own errors; `hooklab.core.errors` maps both to one message, so
each command is written once.
"""

from __future__ import annotations

from typing import Any, Protocol

from hooklab.prefect.deploy import WebhookApi
from hooklab.workspace import Workspace


class ManagementApi(WebhookApi, Protocol):
    """The operations `hooklab webhook` and `hooklab service-account` need: Prefect Cloud's
    webhook calls (what push and pull use too), and the rest of hooklab's management API."""

    def rotate_webhook(self, webhook_id: str) -> dict[str, Any]: ...
    def delete_webhook(self, webhook_id: str) -> None: ...
    def list_service_accounts(self) -> list[dict[str, Any]]: ...
    def create_service_account(self, name: str) -> dict[str, Any]: ...
    def delete_service_account(self, account_id: str) -> None: ...
    def enforcement(self) -> bool: ...
    def set_enforcement(self, on: bool) -> dict[str, Any]: ...


class LocalApi:
    """The management API over a Workspace file, without a server."""

    def __init__(self, workspace: Workspace) -> None:
        self.workspace = workspace

    def _json(self, hook: Any) -> dict[str, Any]:
        result: dict[str, Any] = hook.to_api(self.workspace.account_id, self.workspace.workspace_id)
        return result

    def list_webhooks(self) -> list[dict[str, Any]]:
        return [self._json(hook) for hook in self.workspace.list_webhooks()]

    def read_webhook(self, webhook_id: str) -> dict[str, Any]:
        return self._json(self.workspace.get_webhook(webhook_id))

    def create_webhook(
        self,
        name: str,
        template: str,
        description: str = "",
        service_account_id: str | None = None,
    ) -> dict[str, Any]:
        hook = self.workspace.create_webhook(
            name, template, description, service_account_id=service_account_id
        )
        return self._json(hook)

    def replace_webhook(self, webhook_id: str, name: str, description: str, template: str) -> None:
        self.workspace.update_webhook(
            webhook_id, name=name, description=description, template=template
        )

    def patch_webhook(self, webhook_id: str, changes: dict[str, Any]) -> None:
        self.workspace.update_webhook(webhook_id, **changes)

    def rotate_webhook(self, webhook_id: str) -> dict[str, Any]:
        return self._json(self.workspace.rotate_webhook(webhook_id))

    def delete_webhook(self, webhook_id: str) -> None:
        self.workspace.delete_webhook(webhook_id)

    def list_service_accounts(self) -> list[dict[str, Any]]:
        return [account.to_api() for account in self.workspace.list_service_accounts()]

    def create_service_account(self, name: str) -> dict[str, Any]:
        account, key = self.workspace.create_service_account(name)
        return {**account.to_api(), "api_key": key}

    def delete_service_account(self, account_id: str) -> None:
        self.workspace.delete_service_account(account_id)

    def enforcement(self) -> bool:
        return self.workspace.enforcement

    def set_enforcement(self, on: bool) -> dict[str, Any]:
        disabled = self.workspace.set_enforcement(on)
        return {"enabled": on, "disabled_webhooks": disabled}
