"""A throwaway PostgreSQL cluster that the test suite (and the benchmarks) start themselves.

Debian's `postgresql` package puts its binaries in /usr/lib/postgresql/VERSION/bin. They refuse
to run as root, so as root every one of them runs as the `postgres` user, in a folder that user
can reach. Each cluster lives in its own `mkdtemp` folder on a free loopback port; `close()`
stops it and removes the folder, and the server stops by itself if the process that started it
dies without closing it (a killed test run leaves no server behind).

    cluster = PostgresCluster(find_bindir()).start()
    with cluster.database() as url:  # postgresql://hooklab@127.0.0.1:PORT/hooklab_test_1
        ...
    cluster.close()
"""

from __future__ import annotations

import atexit
import contextlib
import itertools
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal
from urllib.parse import quote

if TYPE_CHECKING:
    import psycopg

NOT_INSTALLED = "PostgreSQL is not installed: apt-get install postgresql"
SUPERUSER = "hooklab"
OS_USER = "postgres"  # who runs the binaries when we are root (Debian's package makes it)
STARTUP_SECONDS = 30
STOP_SECONDS = 30
# Durability most tests do not need: a crash of the machine loses a throwaway cluster anyway.
FAST = {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}
# The superuser comes in without a password (initdb -A trust); every other role needs its own,
# so a test can be refused for a wrong or missing one.
PG_HBA = f"""\
local all {SUPERUSER} trust
host  all {SUPERUSER} 127.0.0.1/32 trust
local all all scram-sha-256
host  all all 127.0.0.1/32 scram-sha-256
"""


def find_bindir() -> Path | None:
    """Where `initdb` and `postgres` are: Debian's highest version, else `pg_config --bindir`."""

    def version(bindir: Path) -> tuple[int, ...]:
        return tuple(int(part) for part in re.findall(r"\d+", bindir.parent.name))

    def complete(bindir: Path) -> bool:
        return all((bindir / name).is_file() for name in ("initdb", "postgres"))

    debian = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=version, reverse=True)
    for bindir in debian:
        if complete(bindir):
            return bindir
    pg_config = shutil.which("pg_config")
    if pg_config is not None:
        answer = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True)
        if answer.returncode == 0 and complete(Path(answer.stdout.strip())):
            return Path(answer.stdout.strip())
    return None


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass(frozen=True)
class Role:
    """A login role made for one test, and a URL of a database as that role."""

    name: str
    password: str
    url: str


class PostgresCluster:
    """One PostgreSQL cluster: `start()`, `stop()` and `start()` again (same data, same port),
    `close()` to stop it and remove its folder.

    `durable=False` turns off fsync, synchronous commit and full-page writes: fast, and
    enough while the server is only ever stopped cleanly. `durable=True` keeps PostgreSQL's
    defaults, for tests that count what survives a crash (`stop(mode="immediate")`) or a
    kill. The server's log is at `log_path`.
    """

    def __init__(self, bindir: Path, *, durable: bool = False, log_path: Path | None = None):
        self.bindir = bindir
        self.durable = durable
        self.folder = Path(tempfile.mkdtemp(prefix="hooklab-pg-"))
        self.data = self.folder / "data"
        self.log_path = log_path or self.folder / "postgres.log"
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None
        self._names = itertools.count(1)
        self._as_os_user = os.geteuid() == 0
        # mkdtemp makes the folder 0700; the server's user must reach its socket and data.
        self.folder.chmod(0o755)
        if self._as_os_user:
            owner = pwd.getpwnam(OS_USER)
            os.chown(self.folder, owner.pw_uid, owner.pw_gid)
        try:
            self._initdb()
        except BaseException:
            shutil.rmtree(self.folder, ignore_errors=True)
            raise
        atexit.register(self.close)  # should a run end without its teardown

    # -- running it ------------------------------------------------------------------------

    def _command(self, program: str, *args: str | Path) -> list[str]:
        """`program` from the PostgreSQL binaries, as the `postgres` user when we are root.

        util-linux's `setpriv` switches the user and then runs the program in its own place,
        so the server is our child: signals reach it as sent (`runuser` would stay between,
        turning each into SIGTERM, a "smart" shutdown that waits for every client to leave).
        It also asks the kernel to send the server SIGINT, a fast shutdown, when the thread
        that started it ends: a test run killed outright leaves no server behind.
        """
        binary = str(self.bindir / program)
        setpriv = shutil.which("setpriv")
        prefix = [setpriv] if setpriv else []
        if self._as_os_user:
            if not setpriv:
                raise RuntimeError("starting PostgreSQL as root needs setpriv (util-linux)")
            prefix += [f"--reuid={OS_USER}", f"--regid={OS_USER}", "--init-groups"]
        # Only the main thread lives as long as the run; one started elsewhere would take
        # the server down with it when it ends.
        if setpriv and threading.current_thread() is threading.main_thread():
            prefix += ["--pdeathsig=INT"]
        head = [*prefix, "--"] if prefix else []
        return [*head, binary, *(str(arg) for arg in args)]

    def _initdb(self) -> None:
        encoding = ("-E", "UTF8", "--locale=C", "--no-sync")
        initdb = self._command("initdb", "-D", self.data, "-A", "trust", "-U", SUPERUSER, *encoding)
        done = subprocess.run(initdb, cwd=self.folder, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"initdb failed:\n{done.stdout}{done.stderr}")
        hba = self.data / "pg_hba.conf"
        owner = hba.stat()
        hba.write_text(PG_HBA)
        os.chown(hba, owner.st_uid, owner.st_gid)

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> PostgresCluster:
        """Start the server and wait until it takes connections. The first start picks a free
        port (another on a clash); a later one keeps the port it had."""
        if self.running:
            return self
        if self.port:
            self._start_on(self.port)
            return self
        for _attempt in range(5):
            port = free_port()
            if self._start_on(port, clash_ok=True):
                self.port = port
                return self
        raise RuntimeError(f"PostgreSQL found no free port; its log: {self.log_path}")

    def _start_on(self, port: int, *, clash_ok: bool = False) -> bool:
        settings = {"listen_addresses": "127.0.0.1", **({} if self.durable else FAST)}
        options = [f"-c{name}={value}" for name, value in settings.items()]
        where = ("-D", self.data, "-p", str(port), "-k", self.folder)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self._command("postgres", *where, *options),
                cwd=self.folder,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                # Its own group: a Ctrl-C at the terminal reaches pytest, whose teardown stops
                # the server after the tests' own teardown, not before it.
                start_new_session=True,
            )
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self.process = None
                if clash_ok and "could not bind" in self.log_tail():
                    return False
                raise RuntimeError(f"PostgreSQL did not start:\n{self.log_tail()}")
            if self._ready() and self._answers(port):
                return True
            time.sleep(0.02)
        self.stop(mode="immediate")
        raise RuntimeError(f"PostgreSQL did not take connections in time:\n{self.log_tail()}")

    def _ready(self) -> bool:
        """What pg_ctl waits for: our postmaster has marked its lock file `ready`. (Trying to
        connect instead writes a FATAL line to the log for every attempt before that.)"""
        try:
            lines = (self.data / "postmaster.pid").read_text().split("\n")
        except OSError:
            return False
        ours = self.process is not None and lines[0] == str(self.process.pid)
        return ours and len(lines) > 7 and lines[7].strip() == "ready"

    def _answers(self, port: int) -> bool:
        """True once our own server (its data folder, not another on the port) answers."""
        import psycopg

        try:
            with psycopg.connect(
                host="127.0.0.1", port=port, user=SUPERUSER, dbname="postgres", connect_timeout=2
            ) as db:
                row = db.execute("SHOW data_directory").fetchone()
        except psycopg.OperationalError:
            return False
        return row is not None and Path(row[0]) == self.data

    def stop(self, mode: Literal["fast", "immediate"] = "fast") -> None:
        """Stop the server, keeping its data: `fast` ends every session and shuts down cleanly;
        `immediate` quits without a checkpoint, as a crash would (recovery runs on start). Only
        a durable cluster keeps every commit through an immediate stop: without synchronous
        commit, the last ones were acknowledged before their WAL was written."""
        process = self.process
        if process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGINT if mode == "fast" else signal.SIGQUIT)
        try:
            process.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):  # the server and its sessions
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
        self.process = None

    def close(self) -> None:
        """Stop the server and remove its folder (the log too, unless it was put elsewhere)."""
        self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)
        atexit.unregister(self.close)

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    # -- databases and roles ---------------------------------------------------------------

    def url(self, database: str = "postgres", user: str = SUPERUSER, password: str = "") -> str:
        secret = f":{quote(password, safe='')}" if password else ""
        return f"postgresql://{user}{secret}@127.0.0.1:{self.port}/{database}"

    def connect(self, database: str = "postgres") -> psycopg.Connection[tuple[object, ...]]:
        """A superuser connection in autocommit mode, for setting a test up or looking in."""
        import psycopg

        return psycopg.connect(self.url(database), autocommit=True)

    def create_database(self) -> str:
        """A new, empty database (from template1); its name."""
        from psycopg import sql

        name = f"hooklab_test_{next(self._names)}"
        with self.connect() as db:
            db.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return name

    def drop_database(self, name: str) -> None:
        """Drop it even if a test left connections open to it."""
        from psycopg import sql

        with self.connect() as db:
            db.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )

    @contextlib.contextmanager
    def database(self) -> Iterator[str]:
        """A fresh database's URL for the block, dropped after it (the server is started first,
        and again after, if the block left it stopped)."""
        self.start()
        name = self.create_database()
        try:
            yield self.url(name)
        finally:
            self.start()
            self.drop_database(name)

    def create_role(self, database: str, *, password: str | None = None) -> Role:
        """A login role with no rights beyond connecting (it cannot create a table in
        `database`), and its password: given, or a random one."""
        from psycopg import sql

        name = f"hooklab_role_{next(self._names)}"
        password = secrets.token_urlsafe(12) if password is None else password
        with self.connect(database) as db:
            db.execute(
                sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                    sql.Identifier(name), sql.Literal(password)
                )
            )
            # PostgreSQL 15 already keeps the public schema to its owner; 14 lets anyone in.
            db.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
        return Role(name, password, self.url(database, name, password))

    def drop_role(self, name: str) -> None:
        from psycopg import sql

        self.start()
        with self.connect() as db:
            db.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(name)))


class FreezingProxy:
    """A TCP relay to PostgreSQL that, once frozen, keeps every connection open and passes
    nothing on: a server that accepts and never answers (stopped, or cut off). `accepted`
    counts the connections made through it; `freeze_on` freezes it when a client sends a
    statement holding those bytes (so a test can stop the store at one exact query)."""

    def __init__(self, port: int, *, freeze_on: bytes | None = None) -> None:
        self.upstream = port
        self.frozen = threading.Event()
        self.freeze_on = freeze_on  # a client's message holding this freezes the proxy
        self.accepted = 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.sockets: list[socket.socket] = [self.listener]
        threading.Thread(target=self._accept, daemon=True).start()

    def url(self, url: str) -> str:
        """`url` (of the database behind) through this proxy."""
        return url.replace(f":{self.upstream}/", f":{self.port}/")

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            self.accepted += 1
            server = socket.create_connection(("127.0.0.1", self.upstream))
            self.sockets += [client, server]
            for source, sink in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        while True:
            try:
                data = source.recv(65536)
            except OSError:
                return
            if not data:
                return
            if self.freeze_on is not None and self.freeze_on in data:
                self.frozen.set()
            while self.frozen.is_set():
                time.sleep(0.05)  # held: nothing passes while frozen
            try:
                sink.sendall(data)
            except OSError:
                return

    def close(self) -> None:
        for each in self.sockets:
            each.close()
