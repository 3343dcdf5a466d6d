"""Writing into a person's repository carefully: each file written to a temporary file in its
folder and renamed into place, never through a symbolic link, never into a folder that is a link;
and a record of what an export wrote, so that a later one replaces only what nobody changed.

A link where a file is to be written is replaced by the file, never followed, so a case file
linked to `~/.bashrc` cannot make hooklab write to `~/.bashrc`. A folder to write into that is
itself a link (or, for a relative path, lies below one inside the working directory) is refused:
its files would land wherever the link points.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path

from hooklab.core.errors import InvalidInput

RECORD_FILE = ".hooklab-export.json"
_RECORDABLE = re.compile(r"(?:template\.j2|webhook\.json|cases/(?!\.)[\w.-]+\.json)\Z")
_RECORD_NOTE = (
    "Written by `hooklab cases export`: a digest of each file it wrote, so that the next export "
    "replaces only files nobody has changed since. Commit it with the cases."
)


class RefusedWrite(InvalidInput):
    """A write hooklab will not make, in one line: it would go through a link, or replace
    what a person wrote."""


def digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def check_folder(folder: Path) -> None:
    """Refuse to write into `folder` when it is a symbolic link, or (for a relative path) when a
    folder above it, below the working directory, is one."""
    candidates = [folder]
    if not folder.is_absolute():
        candidates += [parent for parent in folder.parents if parent != Path(".")]
    for candidate in candidates:
        if candidate.is_symlink():
            target = os.readlink(candidate)
            raise RefusedWrite(
                f"{candidate} is a symbolic link (to {target}): hooklab does not write through "
                "links; give the folder it points to if that is where the files belong"
            )


def read_text(path: Path) -> str | None:
    """A regular file's text; None when there is none, or it is a link (not followed)."""
    if path.is_symlink() or not path.is_file():
        return None
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None


def write_file(path: Path, text: str) -> None:
    """Write `text` to `path`: into a temporary file in the same folder, then renamed over it,
    so that a reader sees the old file or the new one, and a link at `path` is replaced, not
    written through. The file keeps its mode if it had one, else gets the usual one."""
    check_folder(path.parent)
    mode = _mode_for(path)
    handle, partial = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            file.write(text)
        os.chmod(partial, mode)
        os.replace(partial, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(partial)
        raise


def remove_file(path: Path) -> None:
    """Remove a file (a link is removed itself, never its target)."""
    check_folder(path.parent)
    path.unlink(missing_ok=True)


def _mode_for(path: Path) -> int:
    if not path.is_symlink() and path.is_file():
        return path.stat().st_mode & 0o777
    return 0o666 & ~_umask()


def _umask() -> int:
    # Read without changing it where the system says it (Linux); else set and put it back.
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


class Record:
    """What an export wrote into a folder: each file (relative to the folder) and a digest of
    its text. A file whose text still has its digest was not changed by anyone since."""

    def __init__(self, folder: Path, files: Mapping[str, str] | None = None) -> None:
        self.folder = folder
        self.files = dict(files or {})

    @classmethod
    def read(cls, folder: Path) -> Record:
        """The folder's record; an empty one when it has none or it cannot be read (then no
        file counts as written by an export, and none is replaced without --force)."""
        text = read_text(folder / RECORD_FILE)
        try:
            data = json.loads(text) if text is not None else {}
        except ValueError:
            data = {}
        files = data.get("files") if isinstance(data, dict) else None
        if not isinstance(files, dict):
            return cls(folder)
        # Only names an export writes: a record edited to name `cases/../../x` names nothing.
        return cls(folder, {k: str(v) for k, v in files.items() if _RECORDABLE.match(str(k))})

    def unchanged(self, name: str) -> bool:
        """True when the export wrote `name` and nobody changed it since."""
        recorded = self.files.get(name)
        if recorded is None:
            return False
        text = read_text(self.folder / name)
        return text is not None and digest(text) == recorded

    def written(self, name: str, text: str) -> None:
        self.files[name] = digest(text)

    def forget(self, name: str) -> None:
        self.files.pop(name, None)

    def names(self) -> Iterator[str]:
        return iter(sorted(self.files))

    def save(self) -> None:
        data = {"about": _RECORD_NOTE, "files": dict(sorted(self.files.items()))}
        write_file(self.folder / RECORD_FILE, json.dumps(data, indent=2) + "\n")
