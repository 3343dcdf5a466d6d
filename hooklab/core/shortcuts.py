"""The conditions under which the pipeline may take a shortcut, each proven against the slow
path by `tests/core/test_shortcuts.py`: an event that validation takes as it is
(`is_plain_event`), one whose JSON is surely within Prefect's size limit
(`surely_within_limits`), `json_loads`, json.loads without its layers of calls, and
`json_body`, a JSON body read by orjson where it gives what json.loads gives, and `json_text`,
a template's output read the same way.

A shortcut that these let through must give the same events and the same error texts as the
slow path; a change here is a change to what that test proves.
"""

from __future__ import annotations

import itertools
import json
import re
import sys
from datetime import datetime, timezone
from typing import Any
from uuid import UUID

import orjson

from hooklab.core.events import (
    MAXIMUM_EVENT_NAME_LENGTH,
    MAXIMUM_LABELS_PER_RESOURCE,
    MAXIMUM_RELATED_RESOURCES,
    MAXIMUM_SIZE_BYTES,
)
from hooklab.core.request import HookRequest


def json_loads(text: str) -> Any:
    """`json.loads` of a str, the same values and errors, without its two layers of calls."""
    if text.startswith("\ufeff"):
        return json.loads(text)  # for its error about the byte order mark
    blank = _WHITESPACE(text, 0)  # (the pattern matches everywhere, if only emptily)
    value, end = _raw_decode(text, blank.end() if blank else 0)
    blank = _WHITESPACE(text, end)
    end = blank.end() if blank else end
    if end != len(text):
        raise json.JSONDecodeError("Extra data", text, end)
    return value


_raw_decode = json.JSONDecoder().raw_decode
_WHITESPACE = re.compile(r"[ \t\n\r]*").match


class NotQuick(ValueError):
    """A body `json_body` leaves to json.loads, which reads it or says why it cannot."""


def json_body(body: bytes) -> Any:
    """`json.loads(body.decode("utf-8"))` by orjson, three times as quick on a large body; raises
    `NotQuick` (a ValueError) where the two may differ, for `parse_body` to read it as before.

    orjson refuses what json.loads takes and valid JSON does not (NaN, Infinity, numbers past
    a float's range, lone surrogates), bytes that are not UTF-8 and a byte order mark: those
    are refused here too, and json.loads reads them or says why in its own words. Where orjson
    accepts text, it gives json.loads's values but in two cases, kept from it here: an integer
    past 64 bits (orjson makes it a float; it has 19 digits or more) and nesting deeper than
    json.loads can read (orjson reads 1,024 levels; json.loads stops at Python's recursion
    limit, less the frames in use: a body with fewer brackets than a quarter of that limit
    cannot come near).
    """
    # One copy with every digit as 0 and every [ as {, read for both checks.
    plain = body.translate(_DIGITS_AS_ZERO)
    if _has_long_integer(body, plain):
        raise NotQuick("a number that may be past 64 bits")
    if plain.count(b"{") >= sys.getrecursionlimit() // 4:
        raise NotQuick("brackets that may nest deeper than json.loads reads")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        raise NotQuick("not read by orjson") from None


def json_text(text: str) -> Any:
    """`json_loads(text)`, by orjson where `json_body` reads the text's UTF-8 as json.loads
    would (a template's output: a 1.4 KB event passed through parses in about a third of the
    time); json.loads reads the rest, for its values and its errors."""
    try:
        return json_body(text.encode())
    except (NotQuick, UnicodeEncodeError):  # (a lone surrogate has no UTF-8)
        return json_loads(text)


def _has_long_integer(body: bytes, digits: bytes) -> bool:
    """Whether JSON text may hold an integer of 19 digits or more: a run of that many digits
    that starts the text, or follows `[`, `:` or `,` (and whitespace, and a minus sign), as a
    number does. Runs inside strings (a commit's 40 zeros) are looked past, at C speed.
    `digits`: the body translated by `_DIGITS_AS_ZERO`.

    The work in Python is bounded whatever the body: past `_MOST_RUNS` runs, or whitespace
    longer than `_LOOK_BACK` before a run, the answer is yes, and json.loads reads the body."""
    at = digits.find(_LONG_RUN)
    for _ in range(_MOST_RUNS):
        if at == -1:
            return False
        if at and digits[at - 1] == _ZERO:  # inside the run found before: on past its end
            run = _zeros(digits, at)
            at = digits.find(_LONG_RUN, run.end() if run else at + 1)
            continue
        start = at - 1 if at and body[at - 1] == _MINUS else at
        if start == 0:
            return True
        before = body[start - 1]
        if before in _JSON_SPACE:
            text = body[max(0, start - _LOOK_BACK) : start].rstrip(_JSON_SPACE_TEXT)
            if not text:  # the text starts here, or the whitespace runs on further back
                return True
            before = text[-1]
        if before in _BEFORE_NUMBER:
            return True
        at = digits.find(_LONG_RUN, at + len(_LONG_RUN))
    return at != -1


_DIGITS_AS_ZERO = bytes.maketrans(b"123456789[", b"000000000{")
_LONG_RUN = b"0" * 19
_zeros = re.compile(rb"0+").match
_ZERO, _MINUS = ord("0"), ord("-")
_JSON_SPACE_TEXT = b" \t\n\r"
_JSON_SPACE = frozenset(_JSON_SPACE_TEXT)
_MOST_RUNS, _LOOK_BACK = 64, 64
_BEFORE_NUMBER = frozenset(b"[:,")


def is_plain_event(
    fields: dict[str, Any], rendered: str, request: HookRequest, *, own_payload: bool = False
) -> bool:
    """True when Prefect's validation takes this event (its defaults filled in, rendered from
    `request`) as it is, and its size check cannot fail: then the values are the event's.

    A plain event has no `occurred`, `id` or `follows` of its own (a UTC time and a UUID from
    the pipeline's clock and id source), a name and string labels within Prefect's limits, an
    object as payload, and comes from text small enough that its JSON is surely under the size
    limit. Anything else is validated, and fails with Prefect's texts. `own_payload`: the
    template gave the payload, so the request's body and headers are not in the event.
    """
    occurred = fields["occurred"]
    if type(occurred) is not datetime or occurred.tzinfo is not timezone.utc:
        return False
    if type(fields["id"]) is not UUID or fields.get("follows") is not None:
        return False
    name = fields.get("event")
    if type(name) is not str or len(name) > MAXIMUM_EVENT_NAME_LENGTH:
        return False
    if not _is_plain_resource(fields.get("resource"), role=False):
        return False
    if "related" in fields:
        related = fields["related"]
        if type(related) is not list or len(related) > MAXIMUM_RELATED_RESOURCES:
            return False
        if not all(_is_plain_resource(item, role=True) for item in related):
            return False
    if type(fields["payload"]) is not dict:
        return False
    return surely_within_limits(rendered, None if own_payload else request)


def _is_plain_resource(resource: Any, *, role: bool) -> bool:
    if type(resource) is not dict or len(resource) > MAXIMUM_LABELS_PER_RESOURCE:
        return False
    if not resource.get(_RESOURCE_ID) or (role and not resource.get(_RESOURCE_ROLE)):
        return False
    try:
        "".join(resource.values())  # the quickest check that every label is a string
    except TypeError:
        return False
    return True


_RESOURCE_ID = "prefect.resource.id"
_RESOURCE_ROLE = "prefect.resource.role"


# What pydantic cannot serialize: lone surrogates (raw, or as JSON escapes that decode to them).
_SURROGATE = re.compile(r"[\ud800-\udfff]|\\u[dD][89a-fA-F]")
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
# Pydantic refuses to serialize values nested past 255 levels; an event built from text with
# fewer opening brackets than this cannot come near.
_BRACKETS_SURELY_SHALLOW = 200


def surely_within_limits(rendered: str, request: HookRequest | None) -> bool:
    """True when every event rendered as `rendered` (with the default payload of `request`;
    None: the template gave the payload) surely serializes to JSON under Prefect's size limit:
    then validating it is all the checking it needs.

    Everything in an event comes from the rendered text, the body or the headers (and the
    clock, the id source and the webhook, a few hundred bytes), and a character becomes at most
    6 bytes of JSON (a \\uXXXX escape). Pydantic cannot write lone surrogates nor values nested
    past its depth limit, so text that may hold either is measured too.
    """
    body = b"" if request is None else request.body
    chars = len(rendered) + len(body)
    if request is not None:
        chars += len("".join(itertools.chain.from_iterable(request.headers)))
    if 6 * chars + 4096 >= MAXIMUM_SIZE_BYTES:
        return False
    # (ASCII text holds no raw surrogate, and without a backslash-u-d no escape of one either;
    # `tojson` writes many \\u003c-like escapes, none of them of a surrogate.)
    maybe_surrogate = not rendered.isascii() or "\\ud" in rendered or "\\uD" in rendered
    if maybe_surrogate and _SURROGATE.search(rendered):
        return False
    if (b"\\ud" in body or b"\\uD" in body) and _SURROGATE_ESCAPE.search(body):
        return False
    if len(rendered) + len(body) < _BRACKETS_SURELY_SHALLOW:
        return True  # (fewer characters than that, so fewer brackets)
    brackets = rendered.count("{") + rendered.count("[") + body.count(b"{") + body.count(b"[")
    return brackets < _BRACKETS_SURELY_SHALLOW
