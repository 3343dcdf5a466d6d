"""`hooklab serve`'s log: every line with its time, as text for a person or JSON for a shipper.

    2026-12-05T21:15:46.123Z hooklab serving at http://127.0.0.1:8765 (from --port)
    {"time": "2026-12-05T21:15:46.123Z", "level": "info", "message": "hooklab serving at ...",
     "url": "http://127.0.0.1:8765", "port": 8765, "port_from": "given"}

What is for the person's information goes to standard output; warnings and errors go to
standard error, as they did before the lines had times. A JSON line is one object: `time` (UTC,
ISO 8601), `level`, `message` (without the `hooklab: ` that marks a warning in text), the
line's own fields, and `traceback` for a bug.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Callable
from typing import Any, TextIO

from hooklab.store.home import send_notices_to

__all__ = ["FORMATS", "configure", "refuse", "say", "warn"]

FORMATS = ("text", "json")
log = logging.getLogger("hooklab.serve")
_json = False  # set by `configure`: how a refusal to start is written


def say(message: str, **fields: Any) -> None:
    """An information line (standard output); `fields` go into its JSON form only."""
    log.info(message, extra={"fields": fields})


def warn(message: str, **fields: Any) -> None:
    """A line that needs the person's attention (standard error)."""
    log.warning(message, extra={"fields": fields})


def refuse(message: str) -> None:
    """Why the server does not start: one plain line on standard error, as any hooklab command
    says what stops it; under the JSON format, a JSON line like the others."""
    if _json:
        log.error(message, extra={"fields": {}})
    else:
        print(message, file=sys.stderr, flush=True)


def stamp(created: float) -> str:
    """`2026-12-05T21:15:46.123Z`: UTC, to the millisecond."""
    whole = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created))
    return f"{whole}.{int(created * 1000) % 1000:03d}Z"


class TextLines(logging.Formatter):
    """`<time> <message>`, a traceback below it for a bug."""

    def format(self, record: logging.LogRecord) -> str:
        text = f"{stamp(record.created)} {record.getMessage()}"
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return text


class JsonLines(logging.Formatter):
    """One JSON object a line, for a log shipper."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": stamp(record.created),
            "level": record.levelname.lower(),
            "message": record.getMessage().removeprefix("hooklab: "),
        }
        for name, value in getattr(record, "fields", {}).items():
            line.setdefault(name, value)
        if record.exc_info:
            line["traceback"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


def configure(
    form: str = "text", *, out: TextIO | None = None, err: TextIO | None = None
) -> Callable[[], None]:
    """Send this process's log lines (hooklab's, Tornado's, any library's warnings) to `out`
    (information) and `err` (warnings and errors), stamped and shaped as `form` says; returns
    a function that undoes it."""
    global _json
    _json = form == "json"
    formatter = JsonLines() if _json else TextLines()
    to_out = logging.StreamHandler(out or sys.stdout)
    to_out.setLevel(logging.INFO)
    to_out.addFilter(lambda record: record.levelno < logging.WARNING)
    to_err = logging.StreamHandler(err or sys.stderr)
    to_err.setLevel(logging.WARNING)
    root = logging.getLogger()
    hooklab = logging.getLogger("hooklab")
    before = (root.level, hooklab.level)
    for handler in (to_out, to_err):
        handler.setFormatter(formatter)
        root.addHandler(handler)
    root.setLevel(logging.WARNING)
    hooklab.setLevel(logging.INFO)
    send_notices_to(warn)  # a home made private says so in this log, not before it

    def undo() -> None:
        global _json
        _json = False
        send_notices_to(None)
        root.removeHandler(to_out)
        root.removeHandler(to_err)
        root.setLevel(before[0])
        hooklab.setLevel(before[1])

    return undo
