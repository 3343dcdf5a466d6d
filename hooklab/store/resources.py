"""Resource labels and related roles as columns, worked out in Arrow from the stored JSON.

Each event's resource becomes `resource.<label>` columns and its related resources a
`related.<role>` column per role (the id of the first related resource in that role), in order
of first appearance. Arrow's JSON reader parses the texts many rows at a time, or Python's when
there are few; related resources, which most events of a webhook share word for word, are
parsed once per distinct text.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pajson

RESOURCE_ID = "prefect.resource.id"
RESOURCE_NAME = "prefect.resource.name"
RESOURCE_ROLE = "prefect.resource.role"
# Arrow's JSON reader reads a block at a time, and a line must fit in one.
BLOCK_BYTES = 1 << 20
# Texts that Python's json reads quicker than Arrow's reader starts (about half a millisecond
# a call, and more the first time in a process), at most.
FEW = 64


class Spread:
    """The label and role columns of a read's batches: learns the names, in the order they
    first appear, batch by batch."""

    def __init__(self) -> None:
        self.labels: dict[str, None] = dict.fromkeys([RESOURCE_ID, RESOURCE_NAME])
        self.roles: dict[str, None] = {}

    def learn(
        self, resources: pa.Array, related: pa.Array
    ) -> tuple[dict[str, pa.Array], dict[str, pa.Array]]:
        """The label and role columns of one batch (only those it has), names learned."""
        labels = label_columns(resources)
        roles = role_columns(related)
        self.labels.update(dict.fromkeys(labels))
        self.roles.update(dict.fromkeys(roles))
        return labels, roles

    def fields(self) -> tuple[list[pa.Field], list[pa.Field]]:
        """The `resource.<label>` and `related.<role>` fields of every batch learned so far.
        A label that a sender named `id` or `name` would repeat the column of the resource's
        id or name: it takes the next free `.1`, `.2` after its name, as pandas names repeated
        columns, so that neither is lost and every column has a name of its own."""
        taken: set[str] = set()
        names = [free_name(f"resource.{_short(label)}", taken) for label in self.labels]
        labels = [pa.field(name, pa.string()) for name in names]
        roles = [pa.field(f"related.{role}", pa.string()) for role in self.roles]
        return labels, roles

    def columns(
        self, size: int, labels: dict[str, pa.Array], roles: dict[str, pa.Array]
    ) -> tuple[list[pa.Array], list[pa.Array]]:
        """A batch's label and role columns under every name learned (missing where it has
        none)."""
        missing = pa.nulls(size, pa.string())
        return (
            [labels.get(label, missing) for label in self.labels],
            [roles.get(role, missing) for role in self.roles],
        )


def free_name(name: str, taken: set[str]) -> str:
    """`name`, or the first of `name.1`, `name.2`... not `taken` (which it joins), as pandas
    names repeated columns."""
    found, number = name, 0
    while found in taken:
        number += 1
        found = f"{name}.{number}"
    taken.add(found)
    return found


def _short(label: str) -> str:
    return (
        label.removeprefix("prefect.resource.") if label in (RESOURCE_ID, RESOURCE_NAME) else label
    )


def label_columns(resources: pa.Array) -> dict[str, pa.Array]:
    """Each label of the resources (JSON objects of text) as a column of text: each distinct
    text parsed once (the events of a webhook often share theirs word for word)."""
    encoded = resources.dictionary_encode()
    distinct: pa.Array = encoded.dictionary
    if len(distinct) == len(resources):
        return _labels_of_distinct(resources)
    per_text = _labels_of_distinct(distinct)
    return {label: pc.take(values, encoded.indices) for label, values in per_text.items()}


def _labels_of_distinct(resources: pa.Array) -> dict[str, pa.Array]:
    parsed = parse_lines(resources) if len(resources) > FEW else None
    if parsed is None:  # a few texts, or ones Arrow's reader refused: Python's json reads them
        values = [json.loads(text) for text in resources.to_pylist()]
        names = dict.fromkeys(key for value in values for key in value)
        return {name: pa.array([v.get(name) for v in values], pa.string()) for name in names}
    return {name: _text(parsed.column(name).combine_chunks()) for name in parsed.column_names}


def role_columns(related: pa.Array) -> dict[str, pa.Array]:
    """Per role, the id of each event's first related resource in that role."""
    encoded = related.dictionary_encode()
    distinct: pa.Array = encoded.dictionary
    per_text = _roles_of_distinct(distinct)
    return {role: pc.take(ids, encoded.indices) for role, ids in per_text.items()}


def _roles_of_distinct(texts: pa.Array) -> dict[str, pa.Array]:
    parsed = parse_lines(texts, wrap=True) if len(texts) > FEW else None
    if parsed is None:
        return _roles_in_python(texts.to_pylist())
    lists = parsed.column("r").combine_chunks()
    items = pc.list_flatten(lists)
    if not isinstance(items.type, pa.StructType) or items.type.get_field_index(RESOURCE_ROLE) < 0:
        return {}
    parents = pc.list_parent_indices(lists)
    roles = _text(items.field(RESOURCE_ROLE))
    ids = _text(items.field(RESOURCE_ID)) if items.type.get_field_index(RESOURCE_ID) >= 0 else None
    found: dict[str, pa.Array] = {}
    for role in pc.unique(roles).to_pylist():
        if not role:
            continue
        chosen = pc.fill_null(pc.equal(roles, role), False)
        owners = pc.filter(parents, chosen).to_numpy()
        values = pa.nulls(len(owners), pa.string()) if ids is None else pc.filter(ids, chosen)
        # The first in the role, of each text (its items come in order).
        first = np.ones(len(owners), dtype=bool)
        first[1:] = owners[1:] != owners[:-1]
        positions = np.full(len(texts), -1, dtype=np.int64)
        positions[owners[first]] = np.flatnonzero(first)
        found[role] = pc.take(values, pa.array(positions, mask=positions < 0))
    return found


def _roles_in_python(texts: Iterable[str]) -> dict[str, pa.Array]:
    firsts = []
    for text in texts:
        roles: dict[str, str] = {}
        for item in json.loads(text):
            role = item.get(RESOURCE_ROLE)
            if role and role not in roles:
                roles[role] = item.get(RESOURCE_ID)
        firsts.append(roles)
    names = dict.fromkeys(role for roles in firsts for role in roles)
    return {name: pa.array([f.get(name) for f in firsts], pa.string()) for name in names}


def parse_lines(texts: pa.Array, *, wrap: bool = False) -> pa.Table | None:
    """JSON texts (objects; with `wrap`, any value, read as `{"r": value}`) as one Arrow
    table, text kept as text (never read as a time), or None when Arrow cannot read them."""
    if len(texts) == 0:
        return None
    flat = texts.cast(pa.large_string()).fill_null("null")
    longest = pc.max(pc.binary_length(flat)).as_py() or 0
    whole = pa.LargeListArray.from_arrays(pa.array([0, len(flat)], pa.int64()), flat)
    separator = '}\n{"r":' if wrap else "\n"
    joined = pc.binary_join(whole, pa.scalar(separator, pa.large_string()))[0].as_buffer()
    if wrap:
        joined = pa.py_buffer(b'{"r":' + joined.to_pybytes() + b"}")
    # A block no larger than the text (a block is allocated whole), and threads only for
    # more than one block: for a few short texts, each cost more than the parse.
    block = max(min(BLOCK_BYTES, joined.size + 16), 2 * (longest + 16))
    options = pajson.ReadOptions(block_size=block, use_threads=joined.size > block)
    try:
        table = pajson.read_json(pa.BufferReader(joined), read_options=options)
        schema = as_text(table.schema)
        if schema is not None:
            parse = pajson.ParseOptions(explicit_schema=schema)
            table = pajson.read_json(pa.BufferReader(joined), options, parse)
    except pa.ArrowInvalid:
        return None
    return table if table.num_rows == len(texts) else None


def as_text(schema: pa.Schema) -> pa.Schema | None:
    """The schema with every value Arrow read as a time typed as text, or None if none was."""
    changed = False

    def fix(kind: pa.DataType) -> pa.DataType:
        nonlocal changed
        if pa.types.is_timestamp(kind) or pa.types.is_date(kind) or pa.types.is_time(kind):
            changed = True
            return pa.string()
        if pa.types.is_struct(kind):
            return pa.struct([field.with_type(fix(field.type)) for field in kind])
        if pa.types.is_list(kind):
            return pa.list_(kind.value_field.with_type(fix(kind.value_type)))
        return kind

    fixed = pa.schema([field.with_type(fix(field.type)) for field in schema])
    return fixed if changed else None


def _text(values: pa.Array) -> pa.Array:
    return values if values.type == pa.string() else values.cast(pa.string())
