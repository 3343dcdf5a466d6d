"""JSON texts spread into one column per path, by Arrow's JSON reader (many rows at a time)."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pyarrow as pa

from hooklab.store.resources import parse_lines


def spread(texts: pa.ChunkedArray, prefix: str, index: Any) -> pd.DataFrame | None:
    """`<prefix>.<path>` columns of JSON objects (nested objects joined with dots; lists and
    empty objects kept whole), or None when a path changes type from one row to another
    (Arrow cannot hold that in one column) or a text is not an object."""
    if len(texts) == 0:
        return pd.DataFrame(index=index)
    table = parse_lines(texts.combine_chunks())
    if table is None:
        return None
    columns: dict[str, Any] = {}
    _leaves(table.columns, table.column_names, prefix, columns)
    return pd.DataFrame(columns, index=index)


def _leaves(
    arrays: list[pa.ChunkedArray], names: list[str], prefix: str, out: dict[str, Any]
) -> None:
    for array, name in zip(arrays, names, strict=True):
        path = f"{prefix}.{name}"
        kind = array.type
        if pa.types.is_struct(kind) and kind.num_fields:
            # `flatten` gives each field with the object's own gaps applied.
            fields = [chunk.flatten() for chunk in array.chunks]
            children = [
                pa.chunked_array([chunk[i] for chunk in fields], kind.field(i).type)
                for i in range(kind.num_fields)
            ]
            _leaves(children, [kind.field(i).name for i in range(kind.num_fields)], path, out)
        else:
            out[path] = _column(array)


def _column(array: pa.ChunkedArray) -> Any:
    """A leaf as pandas has it: numbers and text as usual; lists and empty objects as
    Arrow-backed values that read as Python lists and dicts."""
    kind = array.type
    if pa.types.is_struct(kind) or pa.types.is_list(kind) or pa.types.is_large_list(kind):
        return pd.array(array, dtype=pd.ArrowDtype(kind))
    return array.to_pandas().array
