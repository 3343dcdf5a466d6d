"""A pandas column of JSON values kept as text in Arrow and parsed when a cell is read.

A million stored payloads as Python dicts take well over a gigabyte; as UTF-8 text in one Arrow
array they take about their size on disk. Reading a cell gives a fresh dict (or list), so the
column reads like an object column of dicts and is read-only.
"""

from __future__ import annotations

import builtins
import json
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from pandas.api.extensions import ExtensionArray, ExtensionDtype, register_extension_dtype
from pandas.api.indexers import check_array_indexer

from hooklab.store.values import is_missing, json_text


@register_extension_dtype
class JSONDtype(ExtensionDtype):
    """The dtype of a `JSONArray`: JSON text, read as Python values."""

    name = "json"
    type = object
    kind = "O"
    na_value = None

    @classmethod
    def construct_array_type(cls) -> builtins.type[JSONArray]:
        return JSONArray

    def __repr__(self) -> str:
        return "json"


class JSONArray(ExtensionArray):
    """JSON texts in a (chunked) Arrow string array; `array[i]` is the parsed value."""

    _dtype = JSONDtype()

    def __init__(self, texts: pa.Array | pa.ChunkedArray) -> None:
        if isinstance(texts, pa.Array):
            texts = pa.chunked_array([texts], type=pa.string())
        self._texts: pa.ChunkedArray = texts

    @classmethod
    def from_texts(cls, texts: Sequence[str | None]) -> JSONArray:
        """Wrap JSON texts as they are (None is a missing value); nothing is parsed."""
        return cls(pa.array(texts, type=pa.string()))

    @classmethod
    def _from_sequence(cls, scalars: Any, *, dtype: Any = None, copy: bool = False) -> JSONArray:
        if isinstance(scalars, JSONArray):
            return scalars
        return cls.from_texts([None if is_missing(v) else json_text(v) for v in scalars])

    @classmethod
    def _from_scalars(cls, scalars: Any, *, dtype: Any) -> JSONArray:
        # What `.map` or `.apply` returns is a new value, typed by pandas as usual, not JSON text.
        raise TypeError("a JSON column is made from stored text only")

    @classmethod
    def _from_factorized(cls, values: Any, original: JSONArray) -> JSONArray:
        return cls.from_texts([None if v is None else str(v) for v in values])

    @property
    def dtype(self) -> JSONDtype:
        return self._dtype

    @property
    def nbytes(self) -> int:
        return int(self._texts.nbytes)

    @property
    def texts(self) -> pa.ChunkedArray:
        """The JSON texts themselves, unparsed."""
        return self._texts

    def __len__(self) -> int:
        return len(self._texts)

    @staticmethod
    def _value(text: str) -> Any:
        """A cell's value, from its text."""
        return json.loads(text)

    def __iter__(self) -> Iterator[Any]:
        value = self._value
        for chunk in self._texts.chunks:
            for text in chunk.to_pylist():
                yield None if text is None else value(text)

    def __getitem__(self, item: Any) -> Any:
        if isinstance(item, tuple) and len(item) == 1:
            item = item[0]
        if item is Ellipsis:
            return self
        if isinstance(item, (int, np.integer)):
            index = int(item)
            if not -len(self) <= index < len(self):
                raise IndexError(f"index {index} is out of bounds for a column of {len(self)}")
            text = self._texts[index].as_py()
            return None if text is None else self._value(text)
        if isinstance(item, slice):
            start, stop, step = item.indices(len(self))
            if step == 1:
                return type(self)(self._texts.slice(start, max(stop - start, 0)))
            return self.take(np.arange(start, stop, step))
        key = check_array_indexer(self, item)
        if key.dtype == bool:
            return type(self)(self._texts.filter(pa.array(key)))
        return self.take(key)

    def isna(self) -> np.ndarray:
        return np.asarray(self._texts.is_null().to_numpy(zero_copy_only=False), dtype=bool)

    def take(self, indices: Any, *, allow_fill: bool = False, fill_value: Any = None) -> JSONArray:
        positions = np.asarray(indices, dtype=np.intp)
        size = len(self)
        if allow_fill:
            if (positions < -1).any():
                raise ValueError("take: only -1 may mark a missing value when allow_fill=True")
            missing = positions == -1
            if size == 0:
                if not missing.all():
                    raise IndexError("cannot take from an empty column")
                return type(self)(pa.nulls(len(positions), type=pa.string()))
            taken = self._take(np.where(missing, 0, positions))
            if missing.any():
                fill = None if is_missing(fill_value) else json_text(fill_value)
                filled = pc.if_else(pa.array(missing), pa.scalar(fill, pa.string()), taken)
                return type(self)(filled)
            return type(self)(taken)
        positions = np.where(positions < 0, positions + size, positions)
        if len(positions) and (positions.min() < 0 or positions.max() >= size):
            raise IndexError("take: an index is out of bounds")
        return type(self)(self._take(positions))

    def _take(self, positions: np.ndarray) -> pa.ChunkedArray:
        return self._texts.take(pa.array(positions, type=pa.int64()))

    def copy(self) -> JSONArray:
        return type(self)(self._texts)  # Arrow arrays are immutable: sharing is a copy

    @classmethod
    def _concat_same_type(cls, to_concat: Sequence[JSONArray]) -> JSONArray:
        chunks = [chunk for array in to_concat for chunk in array._texts.chunks]
        return cls(pa.chunked_array(chunks, type=pa.string()))

    def _values_for_factorize(self) -> tuple[np.ndarray, Any]:
        return np.asarray(self._texts.to_pylist(), dtype=object), None

    def __eq__(self, other: Any) -> Any:
        if isinstance(other, (pd.Series, pd.Index, pd.DataFrame)):
            return NotImplemented
        values = list(self)
        if isinstance(other, (JSONArray, list, np.ndarray)):
            return np.array([a == b for a, b in zip(values, other, strict=True)], dtype=bool)
        return np.array([value == other for value in values], dtype=bool)

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        result = np.empty(len(self), dtype=object)
        for index, value in enumerate(self):
            result[index] = value  # one by one: a list of lists must stay one-dimensional
        return result

    def _explode(self) -> tuple[np.ndarray, np.ndarray]:
        """`Series.explode`: one row per item of each list (`related` above all), as objects;
        an empty list or a missing value keeps one row, as with object columns."""
        items: list[Any] = []
        counts = np.empty(len(self), dtype=np.uint64)
        for index, value in enumerate(self):
            if isinstance(value, list) and value:
                items.extend(value)
                counts[index] = len(value)
            else:
                items.append(np.nan if isinstance(value, list) or value is None else value)
                counts[index] = 1
        result = np.empty(len(items), dtype=object)
        result[:] = items
        return result, counts

    def __arrow_array__(self, type: Any = None) -> pa.ChunkedArray:
        return self._texts

    def _formatter(self, boxed: bool = False) -> Any:
        return repr


@register_extension_dtype
class HeadersDtype(JSONDtype):
    """The dtype of a `HeaderPairs` column."""

    name = "headers"

    @classmethod
    def construct_array_type(cls) -> builtins.type[HeaderPairs]:
        return HeaderPairs

    def __repr__(self) -> str:
        return "headers"


class HeaderPairs(JSONArray):
    """Request headers as stored (JSON text of [name, value] pairs, as received); a cell
    reads as a dict, as `Headers` has them: a repeated name (whatever its case) keeps its
    first spelling, its values joined with ", "."""

    _dtype = HeadersDtype()

    @classmethod
    def _from_sequence(cls, scalars: Any, *, dtype: Any = None, copy: bool = False) -> JSONArray:
        if isinstance(scalars, HeaderPairs):
            return scalars
        return cls.from_texts(
            [None if is_missing(v) else json_text(list(dict(v).items())) for v in scalars]
        )

    @staticmethod
    def _value(text: str) -> Any:
        from hooklab.core.request import Headers

        return Headers([(str(name), str(value)) for name, value in json.loads(text)]).to_dict()
