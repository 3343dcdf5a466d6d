"""Connecting to PostgreSQL: the URL shown without its password, one-line errors, the schema.

psycopg is imported here and in the other `pg_` modules only, and only when a
`postgresql://` store is opened: SQLite users never need it.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from hooklab.core.times import utcnow
from hooklab.store.contract import StoreError, StoreUnavailable
from hooklab.store.pg_schema import LOCK, MIGRATIONS, STORAGE

if TYPE_CHECKING:
    import psycopg

OLDEST = 140000  # PostgreSQL 14: pg_current_xact_id and xid8 came in 13; 14 is what we test
CONNECT_TIMEOUT = 5  # seconds
# How long a statement of the store's own connections may wait for the server. The management
# API and `hooklab serve` call the store on the event loop: a server that accepts and never
# answers (stopped, or cut off behind a live TCP peer) would otherwise block every sender.
ANSWER_TIMEOUT = 10.0  # seconds, as the receiver's group commit waits


def require_psycopg() -> Any:
    try:
        import psycopg
    except ImportError:
        raise StoreError(
            "a postgresql:// store needs hooklab's postgres extra: in the clone hooklab was "
            "installed from, pip install '.[postgres]'"
        ) from None
    return psycopg


def location(url: str) -> str:
    """The URL as a person may see it: `postgresql://user@host:port/db`, no password."""
    psycopg = require_psycopg()
    authority = url.split("://", 1)[-1].split("?", 1)[0]
    if authority.count("@") > 1:
        # libpq would take the first @ for the end of the password, and the rest of the
        # password for a host, and print it: refuse before it does.
        raise StoreError(
            "not a PostgreSQL URL: it has more than one @ before the host; write a password's "
            "@ as %40 (and : / # ? as %3A %2F %23 %3F)"
        )
    try:
        parts = psycopg.conninfo.conninfo_to_dict(url)
    except psycopg.ProgrammingError as exc:
        reason = _scrub(str(exc), url).strip().splitlines()[0]
        if _written_passwords(url):  # libpq quotes what it could not parse: a password's part
            reason = re.sub(r'"[^"]*"', '"***"', reason)
        raise StoreError(f"not a PostgreSQL URL: {reason}") from None
    user = f"{parts['user']}@" if parts.get("user") else ""
    host = parts.get("host") or "localhost"
    port = f":{parts['port']}" if parts.get("port") else ""
    return f"postgresql://{user}{host}{port}/{parts.get('dbname') or ''}"


def connect(
    url: str, *, autocommit: bool = True, answer_within: float | None = None
) -> psycopg.Connection[Any]:
    """A connection, JSON read as text; every failure is a `StoreError` of one line. With
    `answer_within`, a statement the server leaves unanswered that long closes the connection
    and raises `OperationalError` (set `.answer_within` later to bound it after migrating)."""
    psycopg = require_psycopg()
    where = location(url)
    try:
        connection = _bounded_class(psycopg).connect(
            url,
            autocommit=autocommit,
            connect_timeout=CONNECT_TIMEOUT,
            application_name="hooklab",
        )
    except psycopg.Error as exc:
        raise unavailable(where, url, exc) from None
    connection.answer_within = answer_within
    text_json(connection)
    if connection.info.server_version < OLDEST:
        version = connection.info.server_version // 10000
        connection.close()
        raise StoreError(f"{where}: PostgreSQL {version} is too old; hooklab needs 14 or later")
    return connection  # type: ignore[no-any-return]


_BOUNDED: dict[Any, Any] = {}


def _bounded_class(psycopg: Any) -> Any:
    """A `psycopg.Connection` whose every wait for the server ends after `answer_within`."""
    if id(psycopg) not in _BOUNDED:

        class BoundedConnection(psycopg.Connection):  # type: ignore[misc]
            answer_within: float | None = None

            def wait(self, gen: Any, *args: Any, **kwargs: Any) -> Any:
                if self.answer_within is None or args or kwargs:
                    return super().wait(gen, *args, **kwargs)
                try:
                    return super().wait(gen, timeout=self.answer_within)
                except psycopg.errors._WaitTimeout:
                    self.close()  # the query is still out: this connection is done
                    raise psycopg.OperationalError(
                        f"the store did not answer within {self.answer_within:g} s"
                    ) from None

        _BOUNDED[id(psycopg)] = BoundedConnection
    return _BOUNDED[id(psycopg)]


def bounded_async(psycopg: Any) -> Any:
    """A `psycopg.AsyncConnection` whose every wait for the server ends after `answer_within`
    (when set), closing the connection: psycopg's own way out, cancelling the task, first
    asks the server to cancel the query and waits for it, up to 10 s more on a server that
    does not answer."""
    if ("async", id(psycopg)) not in _BOUNDED:

        class BoundedAsyncConnection(psycopg.AsyncConnection):  # type: ignore[misc]
            answer_within: float | None = None

            async def wait(self, gen: Any, *args: Any, **kwargs: Any) -> Any:
                if self.answer_within is None or args or kwargs:
                    return await super().wait(gen, *args, **kwargs)
                try:
                    return await super().wait(gen, timeout=self.answer_within)
                except psycopg.errors._WaitTimeout:
                    self.pgconn.finish()  # the query is still out: this connection is done
                    raise psycopg.OperationalError(
                        f"the store did not answer within {self.answer_within:g} s"
                    ) from None

        _BOUNDED["async", id(psycopg)] = BoundedAsyncConnection
    return _BOUNDED["async", id(psycopg)]


def text_json(connection: Any) -> None:
    """JSON columns read as the text stored (key order and all), as SQLite gives them."""
    from psycopg.types.string import TextLoader

    for name in ("json", "jsonb"):
        connection.adapters.register_loader(name, TextLoader)


def unavailable(where: str, url: str, exc: Exception) -> StoreError:
    """One line for a failed connection or query: why, where, never the password. A store
    that cannot be reached is `StoreUnavailable`; one that refuses us is a `StoreError`."""
    text = _scrub(str(exc), url)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    reason = lines[0] if lines else type(exc).__name__
    reason = re.sub(r"^connection failed: ", "", reason)
    reason = re.sub(r'^connection to server at "[^"]*"(, port \d+)? failed: ', "", reason)
    refused = (
        any(
            word in reason
            for word in ("password authentication failed", "no password supplied", "does not exist")
        )
        or "permission denied" in reason
    )
    kind = StoreError if refused else StoreUnavailable
    return kind(f"{where}: {reason}")


def _scrub(text: str, url: str) -> str:
    """`text` with the URL's password replaced: as parsed, and as written (a URL that does not
    parse, such as a password with a bare `%` or a space, is echoed by libpq's message)."""
    psycopg = require_psycopg()
    secrets = set(_written_passwords(url))
    try:
        password = psycopg.conninfo.conninfo_to_dict(url).get("password")
    except psycopg.Error:
        password = None
    if password:
        secrets.add(str(password))
    for secret in sorted(secrets, key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


def written_password(url: str) -> bool:
    """Whether `url` itself holds a password (rather than PGPASSWORD or ~/.pgpass)."""
    return bool(_written_passwords(url))


def _written_passwords(url: str) -> list[str]:
    """The password as it stands in `url` (after `user:`, or as `password=` in the query),
    both as written and percent-decoded, without parsing the URL as libpq would."""
    rest = url.split("://", 1)[-1]
    found = []
    userinfo = rest[: rest.rfind("@")] if "@" in rest else ""
    if ":" in userinfo:
        found.append(userinfo.split(":", 1)[1])
    found += re.findall(r"[?&]password=([^&]*)", url)
    return [form for raw in found if raw for form in (raw, unquote(raw))]


def migrate(connection: psycopg.Connection[Any], where: str, url: str) -> None:
    """Apply the migrations this database lacks, each whole or not at all."""
    psycopg = require_psycopg()
    try:
        with connection.transaction():
            connection.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK,))
            # Asked first: CREATE ... IF NOT EXISTS needs the right to create even when the
            # table is there, and a role that only reads and writes hooklab's tables has not.
            made = connection.execute("SELECT to_regclass('migrations')").fetchone()
            if made is None or made[0] is None:
                connection.execute(
                    "CREATE TABLE migrations (name text PRIMARY KEY, applied timestamptz NOT NULL)"
                )
            done = {row[0] for row in connection.execute("SELECT name FROM migrations")}
            for name, script in MIGRATIONS:
                if name not in done:
                    connection.execute(script.encode())  # several statements, no parameters
                    connection.execute("INSERT INTO migrations VALUES (%s, %s)", (name, utcnow()))
            connection.execute(STORAGE.encode())
    except psycopg.errors.InsufficientPrivilege as exc:
        reason = _scrub(str(exc).splitlines()[0], url)
        raise StoreError(f"{where}: no rights to make hooklab's tables ({reason})") from None
    except psycopg.Error as exc:
        raise unavailable(where, url, exc) from None
