"""`GET /health`, for load balancers: 200 while the store answers, 503 while it does not.

It asks for no key and says nothing about the store but whether it answers.
"""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any

from tornado.web import RequestHandler

from hooklab.core.errors import StoreError
from hooklab.server.delegates import RETRY_AFTER_SECONDS

if TYPE_CHECKING:
    from hooklab.server.receiver import HookReceiver, Rule

TIMEOUT = 3.0  # seconds the store has to answer


class HealthHandler(RequestHandler):
    def initialize(self, receiver: HookReceiver) -> None:
        self.receiver = receiver

    async def get(self) -> None:
        try:
            await asyncio.wait_for(self.receiver.ping(), TIMEOUT)
        except (StoreError, asyncio.TimeoutError):
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
    return (r"/health/?", HealthHandler, {"receiver": receiver})
