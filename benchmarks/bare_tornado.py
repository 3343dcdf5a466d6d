"""The baseline of bench_receiver: a bare Tornado handler that answers 204 and does nothing."""

from __future__ import annotations

import asyncio
import sys

from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets
from tornado.web import Application, RequestHandler


class NoContent(RequestHandler):
    def post(self, slug: str) -> None:
        self.set_status(204)


def _quiet(handler: RequestHandler) -> None:
    pass


async def serve() -> None:
    sockets = bind_sockets(0, "127.0.0.1")
    server = HTTPServer(Application([(r"/hooks/([^/]+)", NoContent)], log_function=_quiet))
    server.add_sockets(sockets)
    print(f"bare tornado serving at http://127.0.0.1:{sockets[0].getsockname()[1]}", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    try:
        asyncio.run(serve())
    except KeyboardInterrupt:
        sys.exit(0)
