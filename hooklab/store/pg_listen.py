"""Hearing other replicas' changes: `LISTEN hooklab_changes` on a thread of its own.

PostgreSQL notifies at commit, from a trigger on webhooks, service accounts and settings, so
every process holding the store reloads its directory within milliseconds of a change made
anywhere: a rotated slug is refused everywhere, not after a poll. After the connection is
lost, the listener reconnects every second and reloads on return, since it may have missed
notifications meanwhile.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from hooklab.store.contract import StoreError
from hooklab.store.pg_connect import connect

log = logging.getLogger(__name__)

CHANNEL = "hooklab_changes"


class Listener:
    """Calls `reload(connection)` after each burst of notifications, and after reconnecting."""

    def __init__(
        self, url: str, where: str, reload: Callable[[Any], object], *, retry: float = 1.0
    ) -> None:
        self.url = url
        self.where = where
        self.reload = reload
        self.retry = retry
        self.reloads = 0
        self._stop = threading.Event()
        # Listening before the caller loads what it keeps: no change falls in between.
        self._first: Any = self._connect()
        self._thread = threading.Thread(target=self._run, name="hooklab-listen", daemon=True)
        self._thread.start()

    def _connect(self) -> Any:
        connection = connect(self.url)
        connection.execute(f"LISTEN {CHANNEL}")
        return connection

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2.0)

    def _run(self) -> None:
        lost = False
        while not self._stop.is_set():
            try:
                connection, self._first = self._first or self._connect(), None
            except StoreError:
                lost = True
                self._stop.wait(self.retry)
                continue
            try:
                if lost:  # what changed while we were away
                    self._reload(connection)
                    lost = False
                self._listen(connection)
            except Exception as exc:  # the connection dropped: reconnect
                log.debug("hooklab's change listener lost %s: %s", self.where, exc)
                lost = True
                self._stop.wait(self.retry)
            finally:
                connection.close()

    def _listen(self, connection: Any) -> None:
        while not self._stop.is_set():
            heard = False
            for _notice in connection.notifies(timeout=0.5, stop_after=1):
                heard = True
            if heard:
                # Take in the rest of a burst before reloading once.
                for _notice in connection.notifies(timeout=0.01):
                    pass
                self._reload(connection)

    def _reload(self, connection: Any) -> None:
        self.reload(connection)
        self.reloads += 1
