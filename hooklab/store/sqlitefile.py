"""Opening a SQLite file: kept private, and read-only when it cannot be written.

A read-only home (a read-only mount, a folder or a file without write rights) still serves
every read: the file is opened read-only, and a write says in one line which file cannot be
written and why, instead of SQLite's "unable to open database file".
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Sequence
from pathlib import Path

from hooklab.core.errors import NotWritable
from hooklab.store.home import private_database, why
from hooklab.store.sqlitecopies import open_sqlite3

# SQLite's primary result codes that mean "this file cannot be written here".
_READONLY, _CANTOPEN = 8, 14


def open_database(path: str) -> tuple[sqlite3.Connection, str | None]:
    """A connection to the SQLite file at `path` (made private first), in WAL mode, and None;
    or, when the file cannot be written, a read-only connection and the one line that says
    which file and why. Raises `NotWritable` when it can be neither written nor read."""
    if path == ":memory:":
        return connect(path), None
    private_database(path)
    db = connect(path)
    try:
        db.execute("PRAGMA busy_timeout=5000")
        db.execute("PRAGMA journal_mode=WAL")
        # A write, undone: SQLite opens a file it may not write read-only without a word, and
        # even lets BEGIN IMMEDIATE through; a write is what tells.
        db.execute("BEGIN IMMEDIATE")
        try:
            version = int(db.execute("PRAGMA user_version").fetchone()[0])
            db.execute(f"PRAGMA user_version={version}")
        finally:
            db.execute("ROLLBACK")
        return db, None
    except sqlite3.OperationalError as exc:
        db.close()
        if not _cannot_write(exc):
            raise
        reason = _reason(Path(path), exc)
    return connect(path, read_only=reason), reason


def connect(path: str, *, read_only: str | None = None) -> sqlite3.Connection:
    """A connection to the file, or, given why it cannot be written (`read_only`), one that
    only reads it; `NotWritable` when it cannot be read either. Every connection hooklab
    opens to a SQLite file is opened here, and counted while open (`sqlitecopies`)."""
    if read_only is None:
        return open_sqlite3(path, check_same_thread=False, isolation_level=None)
    file = Path(path).absolute()
    uris = [f"{file.as_uri()}?mode=ro"]
    if not file.with_name(file.name + "-wal").exists():
        # With no -wal beside it the file holds every commit, and SQLite may read it as it
        # is: in a folder it cannot write, it could not make the -shm a read needs.
        uris.append(f"{file.as_uri()}?immutable=1")
    failure: sqlite3.Error | None = None
    for uri in uris:
        db = open_sqlite3(path, uri, uri=True, check_same_thread=False, isolation_level=None)
        try:
            db.execute("SELECT count(*) FROM sqlite_master").fetchall()
            return db
        except sqlite3.Error as exc:
            db.close()
            failure = exc
    raise NotWritable(f"{read_only}, and it cannot be read either: {failure}")


def require_migrated(db: sqlite3.Connection, names: Sequence[str], reason: str) -> None:
    """A read-only file must already have every migration: it cannot be upgraded."""
    try:
        done = {row[0] for row in db.execute("SELECT name FROM migrations")}
    except sqlite3.Error:
        done = set()
    if not done.issuperset(names):
        raise NotWritable(
            f"{reason}, and this version of hooklab must upgrade it first: open it once where "
            "it can be written"
        )


def _cannot_write(exc: sqlite3.OperationalError) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)  # Python 3.11 and later
    if code is not None:
        return code & 0xFF in (_READONLY, _CANTOPEN)
    text = str(exc)
    return "readonly" in text or "unable to open" in text


def _reason(file: Path, exc: sqlite3.OperationalError) -> str:
    """Which file cannot be written, and why: the database, or the -wal or -shm SQLite keeps
    beside it (or must make, in its folder)."""
    for suffix in ("", "-wal", "-shm"):
        companion = file.with_name(file.name + suffix)
        if companion.exists() and not os.access(companion, os.W_OK):
            return f"cannot write {companion}: {why(companion, str(exc))}"
    return f"cannot write {file}: {why(file, str(exc))}"
