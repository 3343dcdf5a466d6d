"""A small HTTP client for hooklab's management API (SPEC 10), on the standard library only."""

from __future__ import annotations

import json
import urllib.parse
from typing import Any

from hooklab.core.errors import ApiError, InvalidInput
from hooklab.prefect.http import Unanswered, call

__all__ = ["ApiClient", "ApiError", "api_base"]

DEFAULT_TIMEOUT = 30.0


def api_base(url: str) -> str:
    """The API root for a URL: a bare server address gets the short alias `/api` (SPEC 10).

    >>> api_base("http://127.0.0.1:4200")
    'http://127.0.0.1:4200/api'
    >>> api_base("http://127.0.0.1:4200/api/accounts/a/workspaces/w/")
    'http://127.0.0.1:4200/api/accounts/a/workspaces/w'
    """
    parts = urllib.parse.urlsplit(url.strip())
    if "@" in parts.netloc:  # say so without repeating what is before the @
        raise InvalidInput("the URL holds credentials: give the key as --api-key instead")
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise InvalidInput(f"not an http(s) URL: {url!r}")
    path = parts.path.rstrip("/") or "/api"
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, path, "", ""))


class ApiClient:
    """Calls the management API with the workspace's admin key.

    >>> client = ApiClient("http://127.0.0.1:4200", "key")   # doctest: +SKIP
    >>> client.list_webhooks()                                # doctest: +SKIP
    [{'id': '...', 'name': 'models', 'slug': '...', ...}]

    Every method returns the API's JSON (dicts shaped like `Webhook.to_api`) and raises
    `ApiError` for an error answer.
    """

    def __init__(
        self,
        url: str,
        api_key: str,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        name: str = "the hooklab API",
    ) -> None:
        self.base = api_base(url)
        self.api_key = api_key
        self.timeout = timeout
        self.name = name  # how its errors call it

    def __repr__(self) -> str:
        return f"ApiClient({self.base!r})"

    # Webhooks

    def list_webhooks(self) -> list[dict[str, Any]]:
        found = self._list("POST", "/webhooks/filter", {})
        if not all(_is_webhook(hook) for hook in found):
            raise self.wrong_shape("POST", "/webhooks/filter", "a list of webhooks")
        return found

    def read_webhook(self, webhook_id: str) -> dict[str, Any]:
        return self._webhook("GET", f"/webhooks/{_segment(webhook_id)}")

    def create_webhook(
        self,
        name: str,
        template: str,
        description: str = "",
        service_account_id: str | None = None,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"name": name, "description": description, "template": template}
        if service_account_id is not None:
            body["service_account_id"] = service_account_id
        return self._webhook("POST", "/webhooks/", body)

    def replace_webhook(self, webhook_id: str, name: str, description: str, template: str) -> None:
        """PUT: name, description and template, all three (SPEC 10)."""
        body = {"name": name, "description": description, "template": template}
        self.request("PUT", f"/webhooks/{_segment(webhook_id)}", body)

    def patch_webhook(self, webhook_id: str, changes: dict[str, Any]) -> None:
        self.request("PATCH", f"/webhooks/{_segment(webhook_id)}", changes)

    def rotate_webhook(self, webhook_id: str) -> dict[str, Any]:
        return self._webhook("POST", f"/webhooks/{_segment(webhook_id)}/rotate")

    def delete_webhook(self, webhook_id: str) -> None:
        self.request("DELETE", f"/webhooks/{_segment(webhook_id)}")

    # Service accounts and enforcement

    def list_service_accounts(self) -> list[dict[str, Any]]:
        return self._list("GET", "/service_accounts/")

    def create_service_account(self, name: str) -> dict[str, Any]:
        """The new account, with its `api_key`, which the API shows only this once."""
        return self._object("POST", "/service_accounts/", {"name": name})

    def delete_service_account(self, account_id: str) -> None:
        self.request("DELETE", f"/service_accounts/{_segment(account_id)}")

    def enforcement(self) -> bool:
        return bool(self._object("GET", "/settings/enforcement").get("enabled"))

    def set_enforcement(self, on: bool) -> dict[str, Any]:
        """`{"enabled": on, "disabled_webhooks": <how many enforcement just disabled>}`."""
        return self._object("PUT", "/settings/enforcement", {"enabled": on})

    # Transport

    def request(self, method: str, path: str, body: Any = None) -> Any:
        """Send one request; the decoded JSON answer, or None for an empty one (204).
        A redirect to another host is not followed (the key stays with this one)."""
        data = None if body is None else json.dumps(body).encode()
        headers = {"Authorization": f"Bearer {self.api_key}", "Accept": "application/json"}
        if data is not None:
            headers["Content-Type"] = "application/json"
        try:
            answer = call(
                method, self.base + path, data=data, headers=headers, timeout=self.timeout
            )
        except Unanswered as exc:
            line = exc.sentence(f"{self.name} at {self.base}")
            raise ApiError(0, line[0].upper() + line[1:]) from None
        if answer.status >= 400:
            raise ApiError(answer.status, _detail(answer.status, answer.body))
        if not answer.body.strip():
            return None
        try:
            return json.loads(answer.body)
        except ValueError:
            raise self.wrong_shape(method, path, "JSON") from None

    def wrong_shape(self, method: str, path: str, expected: str) -> ApiError:
        return ApiError(
            502,
            f"{self.base} does not look like a webhook API: its answer to {method} {path} "
            f"is not {expected}",
        )

    def _object(self, method: str, path: str, body: Any = None) -> dict[str, Any]:
        found = self.request(method, path, body)
        if not isinstance(found, dict):
            raise self.wrong_shape(method, path, "a JSON object")
        return found

    def _webhook(self, method: str, path: str, body: Any = None) -> dict[str, Any]:
        found = self._object(method, path, body)
        if not _is_webhook(found):
            raise self.wrong_shape(method, path, "a webhook")
        return found

    def _list(self, method: str, path: str, body: Any = None) -> list[dict[str, Any]]:
        found = self.request(method, path, body)
        if not isinstance(found, list) or not all(isinstance(item, dict) for item in found):
            raise self.wrong_shape(method, path, "a list of objects")
        return found


def _is_webhook(found: dict[str, Any]) -> bool:
    return all(isinstance(found.get(key), str) for key in ("id", "name", "template"))


def _segment(value: str) -> str:
    return urllib.parse.quote(str(value), safe="")


def _detail(status: int, raw: bytes) -> str:
    """A one-line reason from an error answer: its `detail` (FastAPI-style) or its text."""
    text = raw.decode("utf-8", errors="replace").strip()
    try:
        payload = json.loads(text)
    except ValueError:
        payload = None
    if isinstance(payload, dict):
        for key in ("detail", "error", "message"):
            if key in payload:
                text = _flatten(payload[key])
                break
    text = " ".join(text.split())
    return text or f"HTTP {status}"


def _flatten(detail: Any) -> str:
    if isinstance(detail, list):
        # pydantic-style validation errors: [{"loc": [...], "msg": "..."}, ...]
        parts = []
        for item in detail:
            if isinstance(item, dict) and "msg" in item:
                where = ".".join(str(p) for p in item.get("loc", []) if p != "body")
                parts.append(f"{where}: {item['msg']}" if where else str(item["msg"]))
            else:
                parts.append(str(item))
        return "; ".join(parts)
    return str(detail)
