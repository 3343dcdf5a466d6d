"""What the CLI shows and asks: errors with exit codes, confirmations, tables, progress lines."""

from __future__ import annotations

import argparse
import shutil
import sys
import textwrap
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

MIN_COLUMN_WIDTH = 10


class CommandError(Exception):
    """A command could not do what was asked: print the message alone and exit with `code`.

    Exit 1 is for things that went wrong (not found, aborted, rejected); exit 2 is reserved for
    bad arguments, which `UsageError` reports the way argparse does.
    """

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.message = " ".join(message.split()) if "\n" not in message else message
        self.code = code


class UsageError(CommandError):
    """A bad argument found after parsing (a file that cannot be read, a wrong time): exit 2."""

    def __init__(self, message: str) -> None:
        super().__init__(message, code=2)


def text_file(path: str) -> str:
    """An argparse type: the text of a file (UTF-8), or of stdin for `-`."""
    if path == "-":
        return sys.stdin.read()
    try:
        return Path(path).expanduser().read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise argparse.ArgumentTypeError(f"cannot read {path!r}: {reason}") from None


def positive_int(text: str) -> int:
    """An argparse type: a whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive whole number")
    return value


def is_interactive(stream: TextIO | None = None) -> bool:
    """Whether a person is at the keyboard: stdin is a terminal (Prefect's rule for prompts)."""
    stream = stream if stream is not None else sys.stdin
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def confirm(question: str, *, default: bool | None = None) -> bool:
    """Ask a yes/no question on stderr and read the answer from stdin.

    Accepts y/yes/n/no in any case; an empty answer takes the default, if there is one, or
    asks again. When stdin ends before an answer, the default applies, and without one the
    answer is no.
    """
    choices = "[y/n]" if default is None else f"[y/n] ({'y' if default else 'n'})"
    while True:
        sys.stderr.write(f"? {question} {choices}: ")
        sys.stderr.flush()
        line = sys.stdin.readline()
        if not is_interactive():
            # A terminal echoes the answer; from a pipe, show it so the transcript reads well.
            sys.stderr.write(line if line.endswith("\n") else line + "\n")
        if not line:
            return bool(default)
        answer = line.strip().lower()
        if answer in ("y", "yes"):
            return True
        if answer in ("n", "no"):
            return False
        if not answer and default is not None:
            return default
        sys.stderr.write("Please enter Y or N\n")


def render_table(
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    width: int = 0,
    wrap: Sequence[int] | None = None,
    truncate: bool = False,
) -> str:
    """An aligned text table; cells keep their own line breaks and wrap to fit `width`.

    Only the columns listed in `wrap` (all, by default) are narrowed to fit, so ids and
    slugs can stay whole on one line. With `truncate`, a long cell is cut short with "…"
    instead, so that each row stays on one line.

    >>> print(render_table(["id", "name"], [["1", "models"]]))
    id  name
    --  ------
    1   models
    """
    width = width or shutil.get_terminal_size((100, 24)).columns
    cells = [[str(value) for value in row] for row in rows]
    widths = [
        max([len(headers[i])] + [_longest_line(row[i]) for row in cells])
        for i in range(len(headers))
    ]
    gap = 2
    flexible = list(range(len(headers)) if wrap is None else wrap)
    # Narrow the widest flexible column, one character at a time, until the table fits.
    while flexible and sum(widths) + gap * (len(widths) - 1) > width:
        widest = max(flexible, key=lambda i: widths[i])
        if widths[widest] <= max(MIN_COLUMN_WIDTH, len(headers[widest])):
            break
        widths[widest] -= 1

    if truncate:
        cells = [[_shorten(value, widths[i]) for i, value in enumerate(row)] for row in cells]

    def lines_of(row: Sequence[str]) -> list[str]:
        wrapped = [_wrap(value, widths[i]) for i, value in enumerate(row)]
        height = max(len(column) for column in wrapped)
        out = []
        for n in range(height):
            parts = [
                (column[n] if n < len(column) else "").ljust(widths[i])
                for i, column in enumerate(wrapped)
            ]
            out.append((" " * gap).join(parts).rstrip())
        return out

    multiline = any(
        "\n" in value or len(value) > widths[i] for row in cells for i, value in enumerate(row)
    )
    output = lines_of(list(headers))
    output.append((" " * gap).join("-" * w for w in widths))
    for index, row in enumerate(cells):
        if multiline and index:
            output.append("")  # rows that span lines need a visible boundary
        output.extend(lines_of(row))
    return "\n".join(output)


def _longest_line(text: str) -> int:
    return max((len(line) for line in text.splitlines()), default=0)


def _wrap(text: str, width: int) -> list[str]:
    lines: list[str] = []
    for line in text.splitlines() or [""]:
        lines.extend(textwrap.wrap(line, width, break_on_hyphens=False) or [""])
    return lines


def _shorten(text: str, width: int) -> str:
    line = " ".join(text.split())
    return line if len(line) <= width else line[: width - 1] + "…"


class Progress:
    """A one-line progress counter on stderr, shown only when stderr is a terminal.

    >>> with Progress("Replaying", total=3) as progress:
    ...     for _ in range(3):
    ...         progress.advance()
    """

    def __init__(self, label: str, total: int, *, stream: TextIO | None = None) -> None:
        self.label = label
        self.total = total
        self.done = 0
        self.stream = stream if stream is not None else sys.stderr
        self.visible = is_interactive(self.stream)
        self._shown_at = 0.0

    def __enter__(self) -> Progress:
        self._show(force=True)
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.visible:
            self._show(force=True)
            self.stream.write("\n")
            self.stream.flush()

    def advance(self, count: int = 1) -> None:
        self.done += count
        self._show()

    def update(self, done: int, total: int | None = None) -> None:
        """Set the count outright (for callbacks that report `done` of `total`)."""
        self.done = done
        if total is not None:
            self.total = total
        self._show()

    def _show(self, *, force: bool = False) -> None:
        if not self.visible:
            return
        now = time.monotonic()
        if not force and now - self._shown_at < 0.1 and self.done < self.total:
            return  # redrawing costs more than the work for fast items
        self._shown_at = now
        percent = 100 * self.done // self.total if self.total else 100
        self.stream.write(f"\r{self.label}: {self.done}/{self.total} ({percent}%)")
        self.stream.flush()
