"""`GET /health`, for load balancers: 200 while the store answers, 503 while it does not.

It asks for no key and says nothing about the store but whether it answers. It answers within
`TIMEOUT` whatever the store does: a check still running then goes on without the caller, and
every call that arrives meanwhile waits on that same check (a balancer polling many servers
every second, against a store that stopped answering, makes no pile of connections).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from tornado.web import RequestHandler

from hooklab.core.errors import StoreError
from hooklab.server.delegates import RETRY_AFTER_SECONDS

if TYPE_CHECKING:
    from hooklab.server.receiver import HookReceiver, Rule

TIMEOUT = 3.0  # seconds the store has to answer


class SharedCheck:
    """One check of the store at a time: `answers(within)` joins the check in flight, or
    starts one, and tells whether the store answered within that many seconds."""

    def __init__(self, ping: Callable[[], Awaitable[None]]) -> None:
        self._ping = ping
        self._in_flight: asyncio.Future[None] | None = None

    async def answers(self, within: float) -> bool:
        check = self._in_flight
        if check is None or check.done():
            check = self._in_flight = asyncio.ensure_future(self._ping())
            check.add_done_callback(_seen)
        # Not `wait_for`: that cancels the check and waits for the cancellation, which a
        # driver may spend asking a silent server to cancel the query.
        done, _ = await asyncio.wait({check}, timeout=within)
        if not done:
            return False
        try:
            check.result()
        except StoreError:
            return False
        return True


def _seen(check: asyncio.Future[None]) -> None:
    """A check nobody waited for to the end still has its outcome read (asyncio would log it)."""
    if not check.cancelled():
        check.exception()


class HealthHandler(RequestHandler):
    def initialize(self, check: SharedCheck) -> None:
        self.check = check

    async def get(self) -> None:
        if not await self.check.answers(TIMEOUT):
            self.set_status(503)
            self.set_header("Retry-After", str(RETRY_AFTER_SECONDS))
            self.answer({"store": "unavailable"})
            return
        self.answer({"store": "ok"})

    def head(self) -> Any:
        return self.get()

    def answer(self, body: dict[str, str]) -> None:
        self.set_header("Content-Type", "application/json")
        self.set_header("Cache-Control", "no-store")
        self.finish(json.dumps(body))


def health_route(receiver: HookReceiver) -> Rule:
    return (r"/health/?", HealthHandler, {"check": SharedCheck(receiver.ping)})
