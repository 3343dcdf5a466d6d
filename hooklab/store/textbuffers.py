"""Arrow text arrays as NumPy sees them, and back: the offsets and bytes of a column of text,
and new strings cut from the same bytes at other places, without copying them. What lets a
read find things in many texts at once by array arithmetic (`headertext`)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa


def as_large(texts: pa.Array) -> pa.Array:
    """The texts with 64-bit offsets (a copy of the offsets alone). A slice cast so keeps
    offsets that start past the first byte, which Arrow's `ascii_lower` misreads: its texts
    are then copied to start at the first."""
    if pa.types.is_large_string(texts.type):
        return texts
    large = texts.cast(pa.large_string())
    return pa.concat_arrays([large]) if text_bytes(large)[0][:1].any() else large


def text_bytes(texts: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """The offsets (one per text, and the end of the last) and the bytes of large-string
    `texts`, as NumPy arrays over Arrow's buffers."""
    _, offset_buffer, data_buffer = texts.buffers()
    offsets = np.frombuffer(offset_buffer, dtype=np.int64)
    offsets = offsets[texts.offset : texts.offset + len(texts) + 1]
    data = np.frombuffer(data_buffer, dtype=np.uint8) if data_buffer else np.zeros(0, np.uint8)
    return offsets, data


def strings_between(offsets: np.ndarray, data: np.ndarray) -> pa.Array:
    """The strings of `data` between each offset and the next (nondecreasing offsets)."""
    return pa.LargeStringArray.from_buffers(
        len(offsets) - 1, pa.py_buffer(offsets.astype(np.int64)), pa.py_buffer(data)
    )
