"""Helpers for the receiver, API and server tests: a receiver on a fresh loop, an HTTP client."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlencode

from tornado.httpclient import AsyncHTTPClient, HTTPRequest

from hooklab.server import Receiver
from hooklab.workspace import Workspace

T = TypeVar("T")

STATIC_TEMPLATE = '{"event": "ping", "resource": {"prefect.resource.id": "pinger.{{ method }}"}}'
ADMIN_KEY = "test-admin-key"


def run(scenario: Awaitable[T]) -> T:
    """Run one test scenario on its own event loop, as a notebook cell would run on the kernel's."""

    async def bounded() -> T:
        return await asyncio.wait_for(scenario, timeout=60)

    return asyncio.run(bounded())


@asynccontextmanager
async def serving(workspace: Workspace, **options: Any) -> AsyncIterator[Receiver]:
    options.setdefault("admin_key", ADMIN_KEY)
    receiver = Receiver(workspace, **options).start()
    try:
        yield receiver
    finally:
        await receiver.shutdown()


@dataclass
class Reply:
    status: int
    body: bytes
    headers: Mapping[str, str]

    def json(self) -> Any:
        import json

        return json.loads(self.body)


async def send(
    url: str,
    method: str = "GET",
    *,
    body: bytes | str | None = None,
    form: Mapping[str, str] | None = None,
    json: Any = None,
    headers: Mapping[str, str] | None = None,
) -> Reply:
    """One HTTP request over loopback; never raises for an HTTP error status."""
    import json as jsonlib

    all_headers = dict(headers or {})
    if form is not None:
        body = urlencode(form)
        all_headers.setdefault("Content-Type", "application/x-www-form-urlencoded")
    elif json is not None:
        body = jsonlib.dumps(json)
        all_headers.setdefault("Content-Type", "application/json")
    if body is None and method in ("POST", "PUT", "PATCH"):
        body = b""
    client = AsyncHTTPClient(force_instance=True)
    try:
        response = await client.fetch(
            HTTPRequest(
                url,
                method=method,
                headers=all_headers,
                body=body,
                allow_nonstandard_methods=True,
                request_timeout=20,
            ),
            raise_error=False,
        )
    finally:
        client.close()
    return Reply(response.code, response.body or b"", dict(response.headers))


async def api(
    receiver: Receiver, method: str, path: str, json: Any = None, key: str | None = ADMIN_KEY
) -> Reply:
    """A management API call under `<base>/api` with the admin key."""
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    body = None if json is None else json
    return await send(f"{receiver.url}/api{path}", method, json=body, headers=headers)


def stored_events(workspace: Workspace, *, failed: bool | None = None) -> list[dict[str, Any]]:
    """Stored events as plain dicts, read straight from the store (resource and payload parsed)."""
    import json

    from hooklab.store.filters import HistoryFilter

    columns, rows = workspace.store.event_rows(HistoryFilter(failed=failed))
    events = [dict(zip(columns, row, strict=True)) for row in rows]
    for event in events:
        for key in ("resource", "related", "payload"):
            event[key] = json.loads(event[key])
    return events


def locked(path: Path) -> sqlite3.Connection:
    """Another program's connection holding the SQLite file in an exclusive transaction."""
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    return holder
