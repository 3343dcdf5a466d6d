"""The home folder on disk: private to the user who owns it, and served by one process at a time.

The home holds the webhooks' signature secrets, every captured header and the admin key, so
the folder is 0700 and the files hooklab keeps in it 0600: made so, and made so again when an
older hooklab left them readable (said once, in one line). A receiver holds an OS file lock on
`receiver.lock` while it serves the home; the kernel frees it when the process ends, however
it ends, and it holds across PID namespaces (containers sharing the folder), where process ids
mean nothing.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import stat
import sys
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from types import TracebackType

from hooklab.core.errors import NotWritable

DATABASE = "hooklab.db"
LOCK_FILE = "receiver.lock"
# What hooklab writes in a home; the dot names are written whole, then renamed.
SQLITE_SUFFIXES = ("", "-wal", "-shm", "-journal")
HOME_FILES = frozenset(
    {"admin_key", "receiver.json", LOCK_FILE} | {DATABASE + suffix for suffix in SQLITE_SUFFIXES}
)
TEMPORARY_PREFIXES = (".admin_key.", ".receiver.json.")

Say = Callable[[str], None]


_notices: Say | None = None  # set by `send_notices_to` (a server's log)


def send_notices_to(say: Say | None) -> None:
    """Where the home's notices go from now on, `say(line)` (a server's log, which stamps and
    shapes each line), or None: back to stderr."""
    global _notices
    _notices = say


def warn(line: str) -> None:
    """Where the home's notices go unless told otherwise: stderr, which a notebook shows too,
    or the log a server set up (`send_notices_to`), so that a JSON log holds only JSON."""
    if _notices is not None:
        _notices(f"hooklab: {line}")
    else:
        print(f"hooklab: {line}", file=sys.stderr, flush=True)


def secure_home(home: str | os.PathLike[str], *, say: Say = warn) -> Path:
    """Make `home` private: created 0700 when missing; else the folder is made 0700 and the
    files hooklab keeps in it 0600 (other files are left alone). Says so once, in one line,
    when it has to tighten them. Raises `NotWritable` when the folder cannot be made.

    >>> secure_home("/tmp/doctest-home").stat().st_mode & 0o777 == 0o700  # doctest: +SKIP
    True
    """
    folder = Path(home)
    if _make_folder(folder):
        return folder
    try:
        names = [n for n in os.listdir(folder) if _kept_by_hooklab(n)]
    except OSError:
        names = []  # a folder this user cannot list: its files cannot be fixed from here
    _tighten(folder, [folder / name for name in names], folder, say)
    return folder


def private_database(path: str | os.PathLike[str], *, say: Say = warn) -> None:
    """Make a SQLite file private before it is opened: created 0600 when missing, so that
    SQLite makes its -wal and -shm files 0600 too (it gives them the database's mode); an
    existing file and its -wal, -shm and -journal are made 0600. The folder of `hooklab.db` is
    a home and is made private whole; another file's folder is made 0700 only when it is
    created here. Raises `NotWritable` when the file or its folder cannot be created."""
    file = Path(path)
    if file.name == DATABASE:
        secure_home(file.parent, say=say)
    elif not _make_folder(file.parent):
        siblings = [file.with_name(file.name + suffix) for suffix in SQLITE_SUFFIXES]
        _tighten(file, siblings, None, say)
    if file.is_symlink() and not file.exists():
        # A link to nothing: SQLite would make the file where it points, with the umask's
        # mode. Make it there first, private (the link's folder is left as it is).
        file = Path(os.path.realpath(file))
    try:
        fd = os.open(file, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    except FileExistsError:
        return
    except OSError as exc:
        raise NotWritable(f"cannot create {file}: {why(file, exc)}") from None
    try:
        os.fchmod(fd, 0o600)  # whatever the umask took away
    finally:
        os.close(fd)


def why(path: Path, error: OSError | str) -> str:
    """Why `path` cannot be written, in the user's words; else what the error says."""
    with contextlib.suppress(OSError):
        if os.statvfs(path.parent).f_flag & os.ST_RDONLY:
            return "the file system is read-only"
    if path.exists() and not os.access(path, os.W_OK):
        return "the file is read-only"
    if not os.access(path.parent, os.W_OK | os.X_OK):
        return f"its folder {path.parent} is read-only"
    return error if isinstance(error, str) else error.strerror or str(error)


def _kept_by_hooklab(name: str) -> bool:
    return name in HOME_FILES or name.startswith(TEMPORARY_PREFIXES)


def _make_folder(folder: Path) -> bool:
    """Create the folder 0700 (and its missing parents as mkdir makes them); False when it
    was there already."""
    try:
        folder.mkdir(parents=True, mode=0o700)
    except FileExistsError:
        return False
    except OSError as exc:
        raise NotWritable(f"cannot create {folder}: {why(folder, exc)}") from None
    with contextlib.suppress(OSError):
        folder.chmod(0o700)  # whatever the umask took away
    return True


def _tighten(where: Path, files: Iterable[Path], folder: Path | None, say: Say) -> None:
    """Take group and others' rights from `folder` and from the regular `files` (never through
    a link); one line when anything changed, or could not be changed."""
    loose: list[tuple[Path, int]] = []
    if folder is not None:  # the folder the user named, even through a link
        mode = _mode(folder, stat.S_ISDIR, follow=True)
        if mode is not None and mode & 0o077:
            loose.append((folder, mode))
    for path in files:
        mode = _mode(path, stat.S_ISREG, follow=False)
        if mode is not None and mode & 0o077:
            loose.append((path, mode))
    if not loose:
        return
    failed: OSError | None = None
    for path, mode in loose:
        try:
            os.chmod(path, stat.S_IMODE(mode) & 0o700)
        except OSError as exc:
            failed = exc
    if failed is not None:
        say(
            f"{where} can be read by other users and could not be made private "
            f"({failed.strerror or failed}): its files hold secrets"
        )
    else:
        now = "now 0700, files 0600" if folder is not None else "now 0600"
        say(f"made {where} private to you: other users could read it ({now})")


def _mode(path: Path, kind: Callable[[int], bool], *, follow: bool) -> int | None:
    try:
        mode = path.stat().st_mode if follow else path.lstat().st_mode
    except OSError:
        return None
    return mode if kind(mode) else None


class HomeInUse(RuntimeError):
    """Another process serves this home (on this machine, or another sharing the folder)."""


class HomeLock:
    """The lock a receiver holds on its home while it serves it; `release()` when it stops.

    Receivers in one process share it (the lock guards the home against other processes)."""

    def __init__(self, key: str) -> None:
        self._key: str | None = key

    def release(self) -> None:
        with _guard:
            if self._key is None:
                return
            held = _held[self._key]
            held[1] -= 1
            if held[1] == 0:
                del _held[self._key]
                os.close(held[0])  # the kernel drops the lock with the last descriptor
            self._key = None

    def __enter__(self) -> HomeLock:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()


_guard = threading.Lock()
_held: dict[str, list[int]] = {}  # home (its real path) -> [descriptor, holders]


def hold_home(home: str | os.PathLike[str], *, say: Say = warn) -> HomeLock:
    """Take the home for this process, or raise `HomeInUse` (one line) when another process
    has it, or `NotWritable` when the lock cannot be written.

    >>> with hold_home(folder):  # doctest: +SKIP
    ...     serve()
    """
    folder = secure_home(home, say=say)
    key = os.path.realpath(folder)
    with _guard:
        if key in _held:
            _held[key][1] += 1
            return HomeLock(key)
        path = folder / LOCK_FILE
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
        except OSError as exc:
            raise NotWritable(f"cannot write {path}: {why(path, exc)}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = _holder(fd)
            os.close(fd)
            if isinstance(exc, BlockingIOError):
                raise HomeInUse(
                    f"{folder} is already served by another hooklab{holder}: stop that one "
                    "first, or give another --home; to run several, share a PostgreSQL store "
                    "(--store postgresql://...)"
                ) from None
            raise NotWritable(f"cannot lock {path}: {exc.strerror or exc}") from None
        _note_holder(fd)
        _held[key] = [fd, 1]
    return HomeLock(key)


def _note_holder(fd: int) -> None:
    """Write who holds the lock into its file, for the message another process gives."""
    note = f"{os.getpid()} {socket.gethostname()}\n".encode()
    with contextlib.suppress(OSError):
        os.ftruncate(fd, 0)
        os.pwrite(fd, note, 0)


def _holder(fd: int) -> str:
    try:
        pid, host = os.pread(fd, 300, 0).decode().split(maxsplit=1)
    except (OSError, UnicodeDecodeError, ValueError):
        return ""
    return f" (process {int(pid)} on {host.strip()})" if pid.isdigit() else ""


def _forget_in_child() -> None:
    # A child made by fork() without exec shares the lock's open file; closing its copy keeps
    # the parent's lock, and the child never holds the home after its parent is gone.
    global _guard
    _guard = threading.Lock()  # another thread may have held it at the fork
    for fd, _holders in _held.values():
        with contextlib.suppress(OSError):
            os.close(fd)
    _held.clear()


os.register_at_fork(after_in_child=_forget_in_child)
