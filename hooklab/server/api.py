"""The management API: Prefect Cloud's webhook routes and JSON, plus service accounts (SPEC 10).

Served under `<base>/api` and `<base>/api/accounts/<account>/workspaces/<workspace>`, so tools
written for Prefect Cloud work when pointed at hooklab. Callers send the admin key as
`Authorization: Bearer <key>`. Errors are JSON as FastAPI writes them: `{"detail": "..."}`.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import os
import re
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict
from tornado.web import RequestHandler

from hooklab.core import keys
from hooklab.core.errors import EXPECTED, ApiError, NotWritable, answer_for
from hooklab.core.request import read_json
from hooklab.store.home import secure_home, why
from hooklab.workspace import ServiceAccountNotFound, WebhookNotFound, Workspace

ADMIN_KEY_FILE = "admin_key"
PREFIX = r"/api(?:/accounts/([^/]+)/workspaces/([^/]+))?"
NO_KEY = "Missing or invalid admin key: send 'Authorization: Bearer <key>'"
_API_PATH = re.compile(r"/api(?:/|$)")


def key_presented(authorization: str | None, key: str) -> bool:
    """Whether an Authorization header carries `key` as a Bearer token (in constant time)."""
    presented = keys.parse_bearer(authorization)
    return presented is not None and hmac.compare_digest(presented.encode(), key.encode())


def early_refusal(path: str, authorization: str | None, key: Callable[[], str]) -> bytes | None:
    """For a request to the API whose key is wrong or missing, the 401's JSON body, decided
    from its headers alone, so that its body is never read; None otherwise."""
    if _API_PATH.match(path) is None or key_presented(authorization, key()):
        return None
    return json.dumps({"detail": NO_KEY}).encode()


class AdminKeyError(RuntimeError):
    """The admin key could not be written (a full disk, no right to the folder): one line."""


def admin_key(home: Path) -> str:
    """`$HOOKLAB_ADMIN_KEY` if set, else the key in `<home>/admin_key`, made (0600) when the
    file is absent or empty. Raises `AdminKeyError` when it cannot be written."""
    from_env = os.environ.get("HOOKLAB_ADMIN_KEY", "").strip()
    if from_env:
        return from_env
    path = Path(home) / ADMIN_KEY_FILE
    found = _read_key(path)
    if found:
        return found
    key = "hlak_" + secrets.token_urlsafe(32)
    # Written whole under another name first, so that a disk that fills meanwhile leaves no
    # empty key behind (an empty one, left by an older hooklab, counts as absent).
    temporary = path.with_name(f".{ADMIN_KEY_FILE}.{os.getpid()}.{secrets.token_hex(4)}")
    try:
        secure_home(path.parent)
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as file:
            file.write(key + "\n")
            file.flush()
            os.fsync(file.fileno())
        if found is None:
            os.link(temporary, path)  # fails if another process made it first: theirs wins
        else:
            os.replace(temporary, path)
    except FileExistsError:
        pass
    except NotWritable as exc:
        raise AdminKeyError(str(exc)) from None
    except OSError as exc:
        raise AdminKeyError(f"cannot write the admin key to {path}: {why(path, exc)}") from None
    finally:
        with contextlib.suppress(OSError):
            temporary.unlink()
    return _read_key(path) or key


def _read_key(path: Path) -> str | None:
    """The key in the file; "" for an empty file, None for none."""
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        return None


# Request bodies. Unknown fields are refused, as Prefect's action models do.


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class WebhookCreate(_Body):
    name: str
    template: str
    description: str = ""
    enabled: bool = True
    service_account_id: str | None = None


class WebhookReplace(_Body):
    name: str
    template: str
    description: str = ""


class WebhookPatch(_Body):
    name: str | None = None
    description: str | None = None
    template: str | None = None
    enabled: bool | None = None
    service_account_id: str | None = None
    # hooklab extension: signature verification (SPEC 9); the secret is never shown back.
    signature_preset: str | None = None
    signature_secret: str | None = None


class WebhookFilter(_Body):
    model_config = ConfigDict(extra="ignore")
    limit: int | None = None
    offset: int = 0


class ServiceAccountCreate(_Body):
    name: str


class EnforcementSetting(_Body):
    enabled: bool


class ApiHandler(RequestHandler):
    """Shared by every route: the admin key, the workspace in the path, JSON in and out."""

    SUPPORTED_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")

    def initialize(self, workspace: Workspace, key: Callable[[], str]) -> None:
        self.workspace = workspace
        self.key = key

    def set_default_headers(self) -> None:
        self.clear_header("Server")

    def prepare(self) -> None:
        # (The server refuses a wrong key as soon as the headers arrive: `early_refusal`.)
        if not key_presented(self.request.headers.get("Authorization"), self.key()):
            raise ApiError(401, NO_KEY)
        account, workspace = self.path_args[0], self.path_args[1]
        if account is not None and (
            account != self.workspace.account_id or workspace != self.workspace.workspace_id
        ):
            raise ApiError(404, "Workspace not found")
        self.path_args = self.path_args[2:]

    def body(self, model: type[_Body]) -> Any:
        raw = self.request.body or b"{}"
        try:
            data = read_json(raw)
        except ValueError as exc:
            raise ApiError(422, f"The body is not valid JSON: {exc}") from None
        if not isinstance(data, dict):
            raise ApiError(422, "The body must be a JSON object")
        return model.model_validate(data)  # a ValidationError answers 422 (core.errors)

    def reply(self, value: Any, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(value))

    def no_content(self) -> None:
        self.set_status(204)
        self.finish()

    def webhook_json(self, hook: Any) -> dict[str, Any]:
        return hook.to_api(self.workspace.account_id, self.workspace.workspace_id)  # type: ignore[no-any-return]

    def webhook(self, webhook_id: str) -> Any:
        """The webhook with this id (ids only: names and slugs are not API keys)."""
        hook = self.workspace.webhook_by_id(webhook_id)
        if hook is None:
            raise WebhookNotFound(webhook_id)
        return hook

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        status, detail = _status_and_detail(exc, status_code)
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"detail": detail}))

    def log_exception(self, typ: Any, value: Any, tb: Any) -> None:
        if isinstance(value, EXPECTED):
            return  # an answer for the caller, not a server error
        super().log_exception(typ, value, tb)


def _status_and_detail(exc: BaseException | None, status_code: int) -> tuple[int, str]:
    answer = answer_for(exc) if exc is not None else None
    if answer is not None:
        return answer.status, answer.detail
    if status_code == 405:
        return 405, "Method Not Allowed"
    return status_code, "Internal Server Error" if status_code >= 500 else "Error"


class WebhooksHandler(ApiHandler):
    def post(self) -> None:
        data = self.body(WebhookCreate)
        hook = self.workspace.create_webhook(
            data.name,
            data.template,
            data.description,
            enabled=data.enabled,
            service_account_id=data.service_account_id,
        )
        self.reply(self.webhook_json(hook), 201)


class WebhookFilterHandler(ApiHandler):
    def post(self) -> None:
        data = self.body(WebhookFilter)
        hooks = self.workspace.list_webhooks()[data.offset :]
        if data.limit is not None:
            hooks = hooks[: data.limit]
        self.reply([self.webhook_json(hook) for hook in hooks])


class WebhookHandler(ApiHandler):
    def get(self, webhook_id: str) -> None:
        self.reply(self.webhook_json(self.webhook(webhook_id)))

    def put(self, webhook_id: str) -> None:
        data = self.body(WebhookReplace)
        hook = self.webhook(webhook_id)
        self.workspace.update_webhook(
            hook.id, name=data.name, description=data.description, template=data.template
        )
        self.no_content()

    def patch(self, webhook_id: str) -> None:
        data = self.body(WebhookPatch)
        hook = self.webhook(webhook_id)
        changes = data.model_dump(exclude_unset=True)
        if "enabled" in changes and changes["enabled"] is None:
            raise ApiError(422, "enabled: Input should be a valid boolean")
        self.workspace.update_webhook(hook.id, **changes)
        self.no_content()

    def delete(self, webhook_id: str) -> None:
        self.workspace.delete_webhook(self.webhook(webhook_id).id)
        self.no_content()


class RotateHandler(ApiHandler):
    def post(self, webhook_id: str) -> None:
        hook = self.workspace.rotate_webhook(self.webhook(webhook_id).id)
        self.reply(self.webhook_json(hook))


class ServiceAccountsHandler(ApiHandler):
    def post(self) -> None:
        data = self.body(ServiceAccountCreate)
        account, key = self.workspace.create_service_account(data.name)
        self.reply({**account.to_api(), "api_key": key}, 201)

    def get(self) -> None:
        self.reply([account.to_api() for account in self.workspace.list_service_accounts()])


class ServiceAccountHandler(ApiHandler):
    def get(self, account_id: str) -> None:
        self.reply(self._account(account_id).to_api())

    def delete(self, account_id: str) -> None:
        self.workspace.delete_service_account(self._account(account_id).id)
        self.no_content()

    def _account(self, account_id: str) -> Any:
        for account in self.workspace.list_service_accounts():
            if account.id == account_id:
                return account
        raise ServiceAccountNotFound(account_id)


class EnforcementHandler(ApiHandler):
    def get(self) -> None:
        self.reply({"enabled": self.workspace.enforcement})

    def put(self) -> None:
        data = self.body(EnforcementSetting)
        disabled = self.workspace.set_enforcement(data.enabled)
        self.reply({"enabled": data.enabled, "disabled_webhooks": disabled})


class ApiNotFound(ApiHandler):
    def prepare(self) -> None:
        super().prepare()
        raise ApiError(404, "Not Found")


def api_routes(
    workspace: Workspace, key: Callable[[], str]
) -> list[tuple[str, type[RequestHandler], dict[str, Any]]]:
    """The management API's Tornado rules: `workspace`'s, for callers presenting `key()`."""
    routes: list[tuple[str, type[ApiHandler]]] = [
        (r"/webhooks/?", WebhooksHandler),
        (r"/webhooks/filter/?", WebhookFilterHandler),
        (r"/webhooks/([^/]+)/rotate/?", RotateHandler),
        (r"/webhooks/([^/]+)/?", WebhookHandler),
        (r"/service_accounts/?", ServiceAccountsHandler),
        (r"/service_accounts/([^/]+)/?", ServiceAccountHandler),
        (r"/settings/enforcement/?", EnforcementHandler),
        (r"(?:/.*)?", ApiNotFound),
    ]
    options = {"workspace": workspace, "key": key}
    return [(PREFIX + path, handler, options) for path, handler in routes]
