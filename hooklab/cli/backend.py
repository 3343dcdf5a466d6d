"""Where the CLI's management commands go: the local home directly, or a running hooklab API.

Both sides speak the API's JSON (SPEC 10) and raise `ApiError` with the API's status codes, so
each command is written once.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Protocol

from hooklab.cli.apiclient import ApiError
from hooklab.core.templates import TemplateError
from hooklab.workspace import (
    EnforcementError,
    ServiceAccountNotFound,
    WebhookNotFound,
    Workspace,
)


class ManagementApi(Protocol):
    """The operations `hooklab webhook` and `hooklab service-account` need."""

    def list_webhooks(self) -> list[dict[str, Any]]: ...
    def read_webhook(self, webhook_id: str) -> dict[str, Any]: ...
    def create_webhook(
        self,
        name: str,
        template: str,
        description: str = "",
        service_account_id: str | None = None,
    ) -> dict[str, Any]: ...
    def replace_webhook(
        self, webhook_id: str, name: str, description: str, template: str
    ) -> None: ...
    def patch_webhook(self, webhook_id: str, changes: dict[str, Any]) -> None: ...
    def rotate_webhook(self, webhook_id: str) -> dict[str, Any]: ...
    def delete_webhook(self, webhook_id: str) -> None: ...
    def list_service_accounts(self) -> list[dict[str, Any]]: ...
    def create_service_account(self, name: str) -> dict[str, Any]: ...
    def delete_service_account(self, account_id: str) -> None: ...
    def enforcement(self) -> bool: ...
    def set_enforcement(self, on: bool) -> dict[str, Any]: ...


@contextmanager
def _as_api_errors() -> Iterator[None]:
    """Translate the Workspace's exceptions into the statuses the HTTP API would answer."""
    try:
        yield
    except (WebhookNotFound, ServiceAccountNotFound) as exc:
        raise ApiError(404, str(exc)) from None
    except TemplateError as exc:
        raise ApiError(422, f"Invalid template: {exc}") from None
    except (EnforcementError, ValueError) as exc:
        raise ApiError(422, str(exc)) from None


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
        with _as_api_errors():
            return self._json(self.workspace.get_webhook(webhook_id))

    def create_webhook(
        self,
        name: str,
        template: str,
        description: str = "",
        service_account_id: str | None = None,
    ) -> dict[str, Any]:
        with _as_api_errors():
            hook = self.workspace.create_webhook(
                name, template, description, service_account_id=service_account_id
            )
            return self._json(hook)

    def replace_webhook(self, webhook_id: str, name: str, description: str, template: str) -> None:
        with _as_api_errors():
            self.workspace.update_webhook(
                webhook_id, name=name, description=description, template=template
            )

    def patch_webhook(self, webhook_id: str, changes: dict[str, Any]) -> None:
        with _as_api_errors():
            self.workspace.update_webhook(webhook_id, **changes)

    def rotate_webhook(self, webhook_id: str) -> dict[str, Any]:
        with _as_api_errors():
            return self._json(self.workspace.rotate_webhook(webhook_id))

    def delete_webhook(self, webhook_id: str) -> None:
        with _as_api_errors():
            self.workspace.delete_webhook(webhook_id)

    def list_service_accounts(self) -> list[dict[str, Any]]:
        return [account.to_api() for account in self.workspace.list_service_accounts()]

    def create_service_account(self, name: str) -> dict[str, Any]:
        with _as_api_errors():
            account, key = self.workspace.create_service_account(name)
        return {**account.to_api(), "api_key": key}

    def delete_service_account(self, account_id: str) -> None:
        with _as_api_errors():
            self.workspace.delete_service_account(account_id)

    def enforcement(self) -> bool:
        return self.workspace.enforcement

    def set_enforcement(self, on: bool) -> dict[str, Any]:
        disabled = self.workspace.set_enforcement(on)
        return {"enabled": on, "disabled_webhooks": disabled}
