"""The Content-Type of each stored request, found in its stored header text by array arithmetic.

A request's headers are stored as the JSON text of its `[name, value]` pairs, written with
Python's separators (`[["Content-Type", "text/plain"], ...]`; PostgreSQL's `jsonb` prints the
same). Reading a request's content type means finding the pair whose name is `content-type`
in any case. A regular expression over every text costs more than the read of the rows
itself, so each text's pair is found by Arrow's plain substring search in the text with its
ASCII letters lowercased, and its value runs to the next `"`, found by the same search in
the text cut where the value starts (new offsets over the same bytes: nothing is copied but
the values). Python's `bytes.count` over all the texts says whether any names the header
twice; only then does NumPy look for which. A value with an escape in it, and a header sent
more than once (whose values `Headers` joins), are read by Python's json, one row each.
"""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from hooklab.store.textbuffers import as_large, strings_between, text_bytes

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
    Worked out once per distinct value: a sender sends the same few again and again. Arrow
    lowercases letter by letter, Python by its full rules (`İ` gives two letters), so a value
    that is not ASCII is worked out by `media_type` itself."""
    encoded = values.fill_null("").dictionary_encode()
    distinct = encoded.dictionary
    first = pc.list_element(pc.split_pattern(distinct, ";", max_splits=1), 0)
    media = pc.utf8_lower(pc.utf8_trim_whitespace(first))
    wide = np.flatnonzero(~pc.string_is_ascii(distinct).to_numpy(zero_copy_only=False))
    if len(wide):
        from hooklab.core.request import media_type

        found = media.to_pylist()
        for at in wide.tolist():
            found[at] = media_type(distinct[at].as_py())
        media = pa.array(found, pa.string())
    return pc.take(media, encoded.indices)


def _values(texts: pa.Array) -> tuple[pa.Array, np.ndarray]:
    """Each text's Content-Type value as written (null where it has none), and the rows to
    read again in Python: those whose value holds an escape, or that name the header twice."""
    texts = as_large(texts)
    size = len(texts)
    offsets, data = text_bytes(texts)
    lowered = pc.ascii_lower(texts)  # ASCII letters only: the same bytes, at the same places
    at = pc.find_substring(lowered, _PAIR).to_numpy().astype(np.int64)
    found = at >= 0
    # Python's bytes.count finds every pair in the lowered bytes at memchr's pace: only a text
    # that names the header twice makes the count exceed the rows found (rare; then NumPy
    # finds which).
    lowered_bytes = text_bytes(lowered)[1][offsets[0] : offsets[-1]].tobytes()
    twice = np.zeros(0, dtype=np.int64)
    if lowered_bytes.count(_PAIR) > np.count_nonzero(found):
        rows = np.searchsorted(offsets, _pairs(data, offsets[0], offsets[-1]), side="right") - 1
        twice = np.unique(rows[1:][rows[1:] == rows[:-1]])
    # Each row cut in two where its value starts (at its end if it has none): the second
    # halves, every other string of the cut array, start with the values.
    begins = np.where(found, offsets[:-1] + at + len(_PAIR), offsets[1:])
    cut = strings_between(_then(offsets[:-1], begins, offsets[-1]), data)
    quote = pc.find_substring(cut, '"').to_numpy()[1::2].astype(np.int64)
    ends = begins + np.where(found & (quote >= 0), quote, 0)
    broken = quote < 0
    if b"\\" in lowered_bytes:  # an escape somewhere: in a value?
        backslashes = np.flatnonzero(data == ord("\\"))
        broken |= np.searchsorted(backslashes, begins) < np.searchsorted(backslashes, ends)
    odd = np.union1d(twice, np.flatnonzero(found & broken))
    # The values, each followed by the rest of its row: every other string again.
    split = strings_between(_then(begins, ends, offsets[-1]), data)
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


def _then(firsts: np.ndarray, seconds: np.ndarray, end: int) -> np.ndarray:
    """Offsets that cut each text in two (at `seconds`), the end of the last text after."""
    return np.append(np.column_stack([firsts, seconds]).ravel(), end)
