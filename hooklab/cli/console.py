"""What the CLI shows and asks: errors with exit codes, and, drawn by rich, confirmations,
tables and progress bars.

rich is imported only by the commands that draw something. Nothing here writes colour or
box-drawing characters into a pipe: tables are plain text with a rule of dashes, colour goes
only to a terminal, and progress shows only on one.
"""

from __future__ import annotations

import argparse
import io
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TextIO

if TYPE_CHECKING:
    from rich.console import Console

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


def template_file(path: str) -> str:
    """An argparse type: a template file, named as `FILE` or, as `-t` takes it, `@FILE`."""
    return text_file(path[1:] if path.startswith("@") else path)


def warn_findings(template: str) -> None:
    """The compatibility check a notebook shows for a template, its warnings and notes on
    stderr (a syntax error is the command's own error, reported by it)."""
    from hooklab.history.lint import check_template

    for finding in check_template(template):
        if finding.level != "error":
            print(finding, file=sys.stderr)


def is_interactive(stream: TextIO | None = None) -> bool:
    """Whether a person is at the keyboard: stdin is a terminal (Prefect's rule for prompts)."""
    stream = stream if stream is not None else sys.stdin
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _console(stream: TextIO, width: int | None = None) -> Console:
    from rich.console import Console

    # No markup, emoji or highlighting: cells and questions are shown exactly as written.
    return Console(file=stream, width=width, markup=False, emoji=False, highlight=False)


def confirm(question: str, *, default: bool | None = None) -> bool:
    """Ask a yes/no question on stderr and read the answer from stdin.

    Accepts y/yes/n/no in any case; an empty answer takes the default, if there is one, or
    asks again. When stdin ends before an answer, the default applies, and without one the
    answer is no.
    """
    from rich.prompt import Confirm, InvalidResponse
    from rich.text import Text

    class YesNo(Confirm):
        validate_error_message = "Please enter Y or N"

        def process_response(self, value: str) -> bool:
            answer = value.strip().lower()
            if answer not in ("y", "yes", "n", "no"):
                raise InvalidResponse(self.validate_error_message)
            return answer in ("y", "yes")

        @classmethod
        def get_input(cls, console: Any, prompt: Any, password: bool, stream: Any = None) -> str:
            line = str(console.input(prompt, stream=sys.stdin))
            if not is_interactive():
                # A terminal echoes the answer; from a pipe, show it so the transcript reads well.
                console.file.write(line if line.endswith("\n") else line + "\n")
            if not line:
                raise EOFError
            return line.rstrip("\r\n")

    choices = "[y/n]" if default is None else f"[y/n] ({'y' if default else 'n'})"
    ask = YesNo(
        Text(f"{question} {choices}"),  # Text: "[y/n]" is not markup
        console=_console(sys.stderr),
        show_default=False,  # both are in the question already
        show_choices=False,
    )
    try:
        return bool(ask(default=... if default is None else default))
    except EOFError:
        return bool(default)


def render_table(
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    width: int = 0,
    wrap: Sequence[int] | None = None,
    truncate: bool = False,
) -> str:
    """An aligned text table under a rule of dashes; cells wrap to fit `width` (the terminal's,
    or 100 columns in a pipe).

    Only the columns listed in `wrap` (all, by default) are narrowed to fit, so ids and
    slugs can stay whole on one line. With `truncate`, a long cell is cut short with "…"
    instead, so that each row stays on one line. Rows that span lines are set apart by a
    blank line.

    >>> print(render_table(["id", "name"], [["1", "models"]]))
    id  name
    -- ------
    1   models
    """
    width = width or shutil.get_terminal_size((100, 24)).columns
    text = _table_text(headers, rows, width, wrap, truncate, spaced=False)
    if len(text.splitlines()) > len(rows) + 2:  # some row wraps: draw again, rows set apart
        text = _table_text(headers, rows, width, wrap, truncate, spaced=True)
    return text


def _table_text(
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    width: int,
    wrap: Sequence[int] | None,
    truncate: bool,
    *,
    spaced: bool,
) -> str:
    from rich.table import Table
    from rich.text import Text

    table = Table(
        box=_rule_under_header(),
        show_edge=False,
        pad_edge=False,
        padding=(0, 1, 0, 0),
        show_lines=spaced,
    )
    cells = [[" ".join(str(v).split()) if truncate else str(v) for v in row] for row in rows]
    least = 0  # the narrowest the table can be: ids and slugs whole, the rest at their minimum
    for index, header in enumerate(headers):
        narrowed = wrap is None or index in wrap
        whole = max([len(header), *(len(line) for row in cells for line in row[index].split("\n"))])
        smallest = min(whole, max(MIN_COLUMN_WIDTH, len(header))) if narrowed else whole
        least += smallest + 2  # its right padding and the divider
        table.add_column(
            header,
            no_wrap=not narrowed,  # rich narrows only the columns that may wrap
            overflow="ellipsis" if truncate else "fold",
            min_width=smallest,
        )
    for row in cells:
        # A truncated cell keeps to one line, cut short with "…" where its column narrows.
        overflow: Literal["ellipsis", "fold"] = "ellipsis" if truncate else "fold"
        table.add_row(*(Text(cell, no_wrap=truncate, overflow=overflow) for cell in row))
    out = io.StringIO()
    # Wider than the terminal rather than cut an id short: the terminal wraps the line.
    _console(out, max(width, least)).print(table)
    return "\n".join(line.rstrip() for line in out.getvalue().splitlines())


def _rule_under_header() -> Any:
    from rich.box import Box

    # rich's box lines: top, head, head row, mid, row, foot row, foot, bottom; each is left,
    # horizontal, divider, right. Only the line under the header is drawn, in dashes.
    return Box("    \n    \n -  \n    \n    \n    \n    \n    \n", ascii=True)


class Progress:
    """A progress bar on stderr, drawn by rich only when stderr is a terminal.

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
        self._bar: Any = None
        self._task: Any = None

    def __enter__(self) -> Progress:
        if self.visible:
            from rich.progress import BarColumn, TextColumn
            from rich.progress import Progress as Bar

            counts = "{task.description}: {task.completed}/{task.total} ({task.percentage:.0f}%)"
            self._bar = Bar(
                TextColumn(counts, markup=False), BarColumn(), console=_console(self.stream)
            )
            self._bar.__enter__()
            self._task = self._bar.add_task(self.label, total=self.total)
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._bar is not None:
            self._bar.__exit__(*exc_info)

    def advance(self, count: int = 1) -> None:
        self.update(self.done + count)

    def update(self, done: int, total: int | None = None) -> None:
        """Set the count outright (for callbacks that report `done` of `total`)."""
        self.done = done
        if total is not None:
            self.total = total
        if self._bar is not None:
            self._bar.update(self._task, completed=done, total=self.total)
