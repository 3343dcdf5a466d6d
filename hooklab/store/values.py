"""What a frame's cells hold: gaps, payloads spread into paths, nested values as JSON text."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from typing import Any

# pd.NA and pd.NaT, known by their type's name so that reading a cell never imports pandas.
_PANDAS_GAPS = frozenset({"NAType", "NaTType"})

json_text = json.JSONEncoder(ensure_ascii=False, default=str, separators=(",", ":")).encode
"""Compact JSON text of a value (anything JSON cannot hold is written as text)."""


def is_missing(value: Any) -> bool:
    """Whether a cell is a gap: None, NaN, pd.NA or pd.NaT, whichever pandas' storage gave.

    >>> [is_missing(v) for v in (None, float("nan"), 0, "", [])]
    [True, True, False, False, False]
    """
    if value is None:
        return True
    if isinstance(value, float):
        return value != value
    return type(value).__name__ in _PANDAS_GAPS


def flatten_paths(value: Mapping[str, Any], prefix: str) -> Iterator[tuple[str, Any]]:
    """Each leaf of a nested mapping with its dotted path; lists and empty mappings are leaves.

    >>> dict(flatten_paths({"a": {"b": 1, "c": {}}, "d": [1]}, "payload"))
    {'payload.a.b': 1, 'payload.a.c': {}, 'payload.d': [1]}
    """
    for key, item in value.items():
        path = f"{prefix}.{key}"
        if isinstance(item, Mapping) and item:
            yield from flatten_paths(item, path)
        else:
            yield path, item


def _encoder(*, ensure_ascii: bool) -> Callable[[Any], str]:
    """`json.JSONEncoder(ensure_ascii=..., default=str).encode`, without building the C encoder
    again for every value (which `encode` does): three values a request are written this way.
    The values come from `json.loads` and the request parser, so they hold no cycles to check."""
    reference = json.JSONEncoder(ensure_ascii=ensure_ascii, default=str)
    make_encoder = getattr(json.encoder, "c_make_encoder", None)
    if make_encoder is None:  # a Python without the C accelerator
        return reference.encode
    escape = (
        json.encoder.encode_basestring_ascii if ensure_ascii else json.encoder.encode_basestring
    )
    chunks = make_encoder(None, str, escape, None, ": ", ", ", False, False, True)

    def encode(value: Any) -> str:
        if isinstance(value, str):
            return str(escape(value))
        return "".join(chunks(value, 0))

    return encode


stored_json = _encoder(ensure_ascii=False)
"""JSON text as the store writes payloads, resources and related resources."""
stored_json_ascii = _encoder(ensure_ascii=True)
"""What `json.dumps` gives: the store writes request headers so."""
