"""The management API: Prefect Cloud's webhook routes and JSON, plus service accounts (SPEC 10).

Served under `<base>/api` and `<base>/api/accounts/<account>/workspaces/<workspace>`, so tools
written for Prefect Cloud work when pointed at hooklab. Callers send the admin key as
`Authorization: Bearer <key>`. Errors are JSON as FastAPI writes them: `{"detail": "..."}`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import os
import re
import secrets
from collections.abc import Callable
from concurrent.futures import Executor
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError
from tornado.web import RequestHandler

from hooklab.core import keys
from hooklab.core.errors import USER_ERRORS, ApiError, NotWritable, answer_for
from hooklab.core.events import describe_validation_error
from hooklab.core.request import read_json
from hooklab.store.home import secure_home, why
from hooklab.workspace import ServiceAccountNotFound, WebhookNotFound, Workspace

ADMIN_KEY_FILE = "admin_key"
PREFIX = r"/api(?:/accounts/([^/]+)/workspaces/([^/]+))?"
NO_KEY = "Missing or invalid admin key: send 'Authorization: Bearer <key>'"
_API_PATH = re.compile(r"/api(?:/|$)")
T = TypeVar("T")


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
    """Shared by every route: the admin key, the workspace in the path, JSON in and out.

    Whatever reads or writes the store runs in `off_loop`, on the API's own threads: a store
    slow to answer (a PostgreSQL that stopped answering) keeps that call waiting, never the
    event loop that answers webhooks and `/health`.
    """

    SUPPORTED_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")

    def initialize(self, workspace: Workspace, key: Callable[[], str], calls: Executor) -> None:
        self.workspace = workspace
        self.key = key
        self.calls = calls

    def set_default_headers(self) -> None:
        self.clear_header("Server")

    async def prepare(self) -> None:
        # (The server refuses a wrong key as soon as the headers arrive: `early_refusal`.)
        if not key_presented(self.request.headers.get("Authorization"), self.key()):
            raise ApiError(401, NO_KEY)
        account, workspace = self.path_args[0], self.path_args[1]
        self.path_args = self.path_args[2:]
        if account is not None:
            ours = await self.off_loop(
                lambda: (self.workspace.account_id, self.workspace.workspace_id)
            )
            if (account, workspace) != ours:
                raise ApiError(404, "Workspace not found")

    async def off_loop(self, work: Callable[[], T]) -> T:
        """`work()`, run on the API's threads (the store's calls block until it answers)."""
        return await asyncio.get_running_loop().run_in_executor(self.calls, work)

    def body(self, model: type[_Body]) -> Any:
        raw = self.request.body or b"{}"
        try:
            data = read_json(raw)
        except ValueError as exc:
            raise ApiError(422, f"The body is not valid JSON: {exc}") from None
        if not isinstance(data, dict):
            raise ApiError(422, "The body must be a JSON object")
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            raise ApiError(422, describe_validation_error(exc)) from None

    def reply(self, value: Any, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(value))

    def no_content(self) -> None:
        self.set_status(204)
        self.finish()

    def webhook_json(self, hook: Any) -> dict[str, Any]:
        """(Reads the store: call it in `off_loop`.)"""
        return hook.to_api(self.workspace.account_id, self.workspace.workspace_id)  # type: ignore[no-any-return]

    def webhook(self, webhook_id: str) -> Any:
        """The webhook with this id (ids only: names and slugs are not API keys). (Reads the
        store: call it in `off_loop`.)"""
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
        if isinstance(value, USER_ERRORS):
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
    async def post(self) -> None:
        data = self.body(WebhookCreate)

        def create() -> dict[str, Any]:
            hook = self.workspace.create_webhook(
                data.name,
                data.template,
                data.description,
                enabled=data.enabled,
                service_account_id=data.service_account_id,
            )
            return self.webhook_json(hook)

        self.reply(await self.off_loop(create), 201)


class WebhookFilterHandler(ApiHandler):
    async def post(self) -> None:
        data = self.body(WebhookFilter)

        def listed() -> list[dict[str, Any]]:
            hooks = self.workspace.list_webhooks()[data.offset :]
            if data.limit is not None:
                hooks = hooks[: data.limit]
            return [self.webhook_json(hook) for hook in hooks]

        self.reply(await self.off_loop(listed))


class WebhookHandler(ApiHandler):
    async def get(self, webhook_id: str) -> None:
        self.reply(await self.off_loop(lambda: self.webhook_json(self.webhook(webhook_id))))

    async def put(self, webhook_id: str) -> None:
        data = self.body(WebhookReplace)

        def replace() -> None:
            hook = self.webhook(webhook_id)
            self.workspace.update_webhook(
                hook.id, name=data.name, description=data.description, template=data.template
            )

        await self.off_loop(replace)
        self.no_content()

    async def patch(self, webhook_id: str) -> None:
        data = self.body(WebhookPatch)
        changes = data.model_dump(exclude_unset=True)
        if "enabled" in changes and changes["enabled"] is None:
            raise ApiError(422, "enabled: Input should be a valid boolean")
        await self.off_loop(
            lambda: self.workspace.update_webhook(self.webhook(webhook_id).id, **changes)
        )
        self.no_content()

    async def delete(self, webhook_id: str) -> None:
        await self.off_loop(lambda: self.workspace.delete_webhook(self.webhook(webhook_id).id))
        self.no_content()


class RotateHandler(ApiHandler):
    async def post(self, webhook_id: str) -> None:
        def rotate() -> dict[str, Any]:
            return self.webhook_json(self.workspace.rotate_webhook(self.webhook(webhook_id).id))

        self.reply(await self.off_loop(rotate))


class ServiceAccountsHandler(ApiHandler):
    async def post(self) -> None:
        data = self.body(ServiceAccountCreate)
        account, key = await self.off_loop(lambda: self.workspace.create_service_account(data.name))
        self.reply({**account.to_api(), "api_key": key}, 201)

    async def get(self) -> None:
        accounts = await self.off_loop(self.workspace.list_service_accounts)
        self.reply([account.to_api() for account in accounts])


class ServiceAccountHandler(ApiHandler):
    async def get(self, account_id: str) -> None:
        self.reply((await self.off_loop(lambda: self._account(account_id))).to_api())

    async def delete(self, account_id: str) -> None:
        await self.off_loop(
            lambda: self.workspace.delete_service_account(self._account(account_id).id)
        )
        self.no_content()

    def _account(self, account_id: str) -> Any:
        for account in self.workspace.list_service_accounts():
            if account.id == account_id:
                return account
        raise ServiceAccountNotFound(account_id)


class EnforcementHandler(ApiHandler):
    async def get(self) -> None:
        self.reply({"enabled": await self.off_loop(lambda: self.workspace.enforcement)})

    async def put(self) -> None:
        data = self.body(EnforcementSetting)
        disabled = await self.off_loop(lambda: self.workspace.set_enforcement(data.enabled))
        self.reply({"enabled": data.enabled, "disabled_webhooks": disabled})


class ApiNotFound(ApiHandler):
    async def prepare(self) -> None:
        await super().prepare()
        raise ApiError(404, "Not Found")


def api_routes(
    workspace: Workspace, key: Callable[[], str], calls: Executor
) -> list[tuple[str, type[RequestHandler], dict[str, Any]]]:
    """The management API's Tornado rules: `workspace`'s, for callers presenting `key()`;
    what calls the store runs on `calls` (see `ApiHandler`)."""
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
    options = {"workspace": workspace, "key": key, "calls": calls}
    return [(PREFIX + path, handler, options) for path, handler in routes]
