"""The Content-Type of each stored request, found in its stored header text by array arithmetic.

A request's headers are stored as the JSON text of its `[name, value]` pairs, written with
Python's separators (`[["Content-Type", "text/plain"], ...]`; PostgreSQL's `jsonb` prints the
same). Reading a request's content type means finding the pair whose name is `content-type`
in any case. A regular expression over every text costs more than the read of the rows
itself, so the pairs are found with NumPy over the texts' bytes, all rows at once: the
candidates are the `[` bytes, kept where the 18 bytes from there spell the pair's start, and
each value runs to the next `"`. A value with an escape in it, and a header sent more than
once (whose values `Headers` joins), are read by Python's json, one row each.
"""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

# The start of a Content-Type pair, lowercased, up to its value's first byte.
_PAIR = b'["content-type", "'


def content_types(headers: pa.Array) -> pa.Array:
    """The media type of each request's Content-Type, from its stored headers ("" if none):
    what `media_type(Headers(pairs).get("content-type"))` gives, row by row."""
    values, odd = _values(headers.fill_null(""))
    if len(odd):
        from hooklab.core.request import Headers

        texts = headers.to_pylist()
        found = values.to_pylist()
        for row in odd.tolist():
            pairs = [(str(k), str(v)) for k, v in json.loads(texts[row])]
            found[row] = Headers(pairs).get("content-type")
        values = pa.array(found, pa.string())
    return media_types(values)


def media_types(values: pa.Array) -> pa.Array:
    """`media_type` of each Content-Type: before any `;`, trimmed, lowercased; "" if none.
    Worked out once per distinct value: a sender sends the same few again and again."""
    encoded = values.fill_null("").dictionary_encode()
    distinct = encoded.dictionary
    first = pc.list_element(pc.split_pattern(distinct, ";", max_splits=1), 0)
    return pc.take(pc.utf8_lower(pc.utf8_trim_whitespace(first)), encoded.indices)


def _values(texts: pa.Array) -> tuple[pa.Array, np.ndarray]:
    """Each text's Content-Type value as written (null where it has none), and the rows to
    read again in Python: those whose value holds an escape, or that name the header twice."""
    if not pa.types.is_large_string(texts.type):
        texts = texts.cast(pa.large_string())  # offsets as int64: no copy of the text
    size = len(texts)
    offsets, data = _bytes(texts)
    lowered = pc.ascii_lower(texts)  # ASCII letters only: the same bytes, at the same places
    at = pc.find_substring(lowered, _PAIR).to_numpy().astype(np.int64)
    found = at >= 0
    # Python's bytes.count finds every pair in the lowered bytes at memchr's pace: only a text
    # that names the header twice makes the count exceed the rows found (rare; then NumPy
    # finds which).
    lowered_bytes = _bytes(lowered)[1][offsets[0] : offsets[-1]].tobytes()
    twice = np.zeros(0, dtype=np.int64)
    if lowered_bytes.count(_PAIR) > np.count_nonzero(found):
        rows = np.searchsorted(offsets, _pairs(data, offsets[0], offsets[-1]), side="right") - 1
        twice = np.unique(rows[1:][rows[1:] == rows[:-1]])
    # Each row cut in two where its value starts (at its end if it has none): the second
    # halves, every other string of the cut array, start with the values.
    begins = np.where(found, offsets[:-1] + at + len(_PAIR), offsets[1:])
    cut = _strings(np.column_stack([offsets[:-1], begins]).ravel(), offsets[-1], data)
    quote = pc.find_substring(cut, '"').to_numpy()[1::2].astype(np.int64)
    ends = begins + np.where(found & (quote >= 0), quote, 0)
    broken = quote < 0
    if b"\\" in lowered_bytes:  # an escape somewhere: in a value?
        backslashes = np.flatnonzero(data == ord("\\"))
        broken |= np.searchsorted(backslashes, begins) < np.searchsorted(backslashes, ends)
    odd = np.union1d(twice, np.flatnonzero(found & broken))
    # The values, each followed by the rest of its row: every other string again.
    split = _strings(np.column_stack([begins, ends]).ravel(), offsets[-1], data)
    values = pc.take(split, pa.array(np.arange(0, 2 * size, 2), mask=~found))
    return values.cast(pa.string()), odd


def _pairs(data: np.ndarray, start: int, end: int) -> np.ndarray:
    """Where each Content-Type pair starts in `data[start:end]`, in order. Three of its bytes
    (the `-`, and the `",` after the name) narrow every position down to a few, whose 18
    bytes are then compared; a letter matches in either case (setting 0x20 lowercases A-Z,
    and makes no other byte a lowercase letter)."""
    region = data[start:end]
    span = len(region) - len(_PAIR) + 1
    if span <= 0:
        return np.zeros(0, dtype=np.int64)
    dash, quote, comma = (_PAIR.index(c) for c in (b"-", b'", ', b","))
    narrowed = region[dash : dash + span] == ord("-")
    narrowed &= region[quote : quote + span] == ord('"')
    narrowed &= region[comma : comma + span] == ord(",")
    found = np.flatnonzero(narrowed)
    for shift, byte in enumerate(_PAIR):
        at = region[found + shift]
        found = found[((at | 0x20) if chr(byte).isalpha() else at) == byte]
    return found + start


def _strings(offsets: np.ndarray, end: int | None, data: np.ndarray) -> pa.Array:
    """Strings over `data` between consecutive `offsets` (and `end`, if given, after the
    last)."""
    if end is not None:
        offsets = np.append(offsets, end)
    return pa.LargeStringArray.from_buffers(
        len(offsets) - 1, pa.py_buffer(offsets.astype(np.int64)), pa.py_buffer(data)
    )


def _bytes(texts: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """The texts' offsets (one per row, and the end) and their bytes, as NumPy arrays."""
    _, offset_buffer, data_buffer = texts.buffers()
    offsets = np.frombuffer(offset_buffer, dtype=np.int64)[
        texts.offset : texts.offset + len(texts) + 1
    ]
    data = np.frombuffer(data_buffer, dtype=np.uint8) if data_buffer else np.zeros(0, np.uint8)
    return offsets, data
