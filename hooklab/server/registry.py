"""Which receiver serves a home: one stable URL per home, shared by every kernel and server.

A receiver that starts writes `<home>/receiver.json` (its host, port and process id) and
removes it when it stops. The port stays remembered after that, so a restarted kernel binds
the same one again and a sender configured yesterday still reaches it. A second kernel on the
same home finds the live receiver there and uses its URL instead of starting another.
"""

from __future__ import annotations

import json
import os
import socket
from dataclasses import asdict, dataclass
from pathlib import Path

from hooklab.store.home import secure_home

RECEIVER_FILE = "receiver.json"


@dataclass(frozen=True)
class Served:
    """A receiver serving a home: where it listens and which process runs it."""

    host: str
    port: int
    pid: int
    running: bool = True
    store: str | None = None  # a store other than the home's own file, without its password

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def is_alive(self, timeout: float = 0.5) -> bool:
        """True while its process exists and its port accepts a connection."""
        if not self.running or not _process_exists(self.pid):
            return False
        try:
            with socket.create_connection((self.host, self.port), timeout=timeout):
                return True
        except OSError:
            return False


def read(home: Path) -> Served | None:
    """What `<home>/receiver.json` says, or None when there is none (or it cannot be read)."""
    try:
        data = json.loads((Path(home) / RECEIVER_FILE).read_text())
        store = data.get("store")
        return Served(
            str(data["host"]),
            int(data["port"]),
            int(data["pid"]),
            bool(data["running"]),
            store if isinstance(store, str) else None,
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def running(home: Path) -> Served | None:
    """The live receiver serving this home, if one is."""
    served = read(home)
    return served if served is not None and served.is_alive() else None


def remembered_port(home: Path, host: str | None) -> int | None:
    """The port this home was last served on from `host` (None: from any address): a restarted
    receiver takes it again."""
    served = read(home)
    if served is None or served.port == 0 or (host is not None and served.host != host):
        return None
    return served.port


def claim(
    home: Path, host: str, port: int, pid: int | None = None, *, store: str | None = None
) -> Served:
    """Record that this process now serves the home at host:port, from `store` when that is
    not the home's own file (as a person may see it: no password)."""
    served = Served(host, port, os.getpid() if pid is None else pid, store=store)
    _write(Path(home), served)
    return served


def release(home: Path, port: int, pid: int | None = None) -> None:
    """Record that this process no longer serves the home on `port`, keeping the port for
    next time. Nothing changes when another receiver has claimed the home since."""
    served = read(home)
    if served is None or (served.pid, served.port) != (os.getpid() if pid is None else pid, port):
        return
    _write(Path(home), Served(served.host, served.port, served.pid, False, served.store))


def _write(home: Path, served: Served) -> None:
    secure_home(home)
    partial = home / f".{RECEIVER_FILE}.{os.getpid()}"
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    os.fchmod(fd, 0o600)  # one left behind by an older hooklab may be open to others
    with os.fdopen(fd, "w") as file:
        file.write(json.dumps(asdict(served)) + "\n")
    os.replace(partial, home / RECEIVER_FILE)  # readers see the old file or the new, never half


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: it exists
        return True
    return True
