"""Values and rendered text as a failure shows them: long text cut with its length said, and
the rendered line with a caret under where the JSON broke."""

from __future__ import annotations

import json
from typing import Any

SHOWN_CHARACTERS = 40  # of a value quoted in a sentence
POINTER_WIDTH = 100  # characters of a rendered line shown around the caret


def caret(rendered: str, offset: int) -> tuple[str, ...]:
    """The rendered line holding `offset` and a caret under it, control characters shown as
    their pictures (one column each) and a long line cut around the caret."""
    start = rendered.rfind("\n", 0, offset) + 1 if offset > 0 else 0
    end = rendered.find("\n", offset)
    end = len(rendered) if end == -1 else end
    number = rendered.count("\n", 0, start) + 1
    text, column = rendered[start:end], offset - start
    if len(text) > POINTER_WIDTH:
        left = max(0, min(column - POINTER_WIDTH // 2, len(text) - POINTER_WIDTH))
        text = text[left : left + POINTER_WIDTH]
        column -= left
        if left:
            text, column = "…" + text[1:], column
    prefix = f"  rendered {number:>3} | "
    return (prefix + _visible(text), " " * (len(prefix) + column) + "^")


def _visible(text: str) -> str:
    return "".join(chr(0x2400 + ord(c)) if ord(c) < 0x20 else c for c in text)


def shorten(value: Any, limit: int = SHOWN_CHARACTERS) -> str:
    """A value as JSON for a sentence, a long one cut with its length said.

    >>> shorten("x" * 1020)
    '"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx…" (1,020 characters)'
    """
    if isinstance(value, str) and len(value) > limit:
        head = json.dumps(value[: limit - 8], ensure_ascii=False)[:-1]
        return f'{head}…" ({len(value):,} characters)'
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def shortened(value: Any, limit: int = SHOWN_CHARACTERS) -> Any:
    """A JSON value with every long text in it cut, for showing a request."""
    if isinstance(value, str) and len(value) > limit:
        return f"{value[: limit - 8]}… ({len(value):,} characters)"
    if isinstance(value, dict):
        return {key: shortened(item, limit) for key, item in value.items()}
    if isinstance(value, list):
        return [shortened(item, limit) for item in value]
    return value
