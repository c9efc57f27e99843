"""Meta values with the Arrow types a reader announced before iterating.

Sources such as JSON sidecars and CSV cells carry loosely typed values; a reader fixes the
types up front (`meta_schema`) so downstream writers can stream, and these helpers make
every yielded `meta` dict hold exactly those fields, with values of those types or None.
"""

from __future__ import annotations

import json
from typing import Any, Callable, Collection, Iterable, Mapping

import pyarrow as pa

# Python coercion per Arrow type family; checked in order, first predicate that holds wins.
_COERCERS: tuple[tuple[Callable[[pa.DataType], bool], Callable[[Any], Any]], ...] = (
    (pa.types.is_boolean, bool),
    (pa.types.is_integer, int),
    (pa.types.is_floating, float),
    (pa.types.is_string, str),
    (pa.types.is_large_string, str),
)


def coerce(value: Any, type_: pa.DataType) -> Any:
    """`value` as the Python type Arrow expects for `type_`; None when it does not convert."""
    if value is None:
        return None
    for applies, convert in _COERCERS:
        if applies(type_):
            try:
                return convert(value)
            except (TypeError, ValueError, OverflowError):
                return None
    return value


def typed_meta(values: Mapping[str, Any], schema: pa.Schema) -> dict[str, Any]:
    """Exactly the schema's fields, coerced; fields the source lacks are None."""
    return {f.name: coerce(values.get(f.name), f.type) for f in schema}


def conform_meta(values: Mapping[str, Any], schema: pa.Schema) -> dict[str, Any]:
    """Exactly the schema's fields, values untouched (already typed, e.g. read from Arrow)."""
    return {f.name: values.get(f.name) for f in schema}


def is_scalar(type_: pa.DataType) -> bool:
    """Whether a column can travel as a meta value (not nested, not raw bytes)."""
    binary = pa.types.is_binary(type_) or pa.types.is_large_binary(type_)
    return not (pa.types.is_nested(type_) or binary or pa.types.is_fixed_size_binary(type_))


# Appended, not prepended: `datasets`' imagefolder takes any `*_file_name` column for a file.
SOURCE_SUFFIX = "_from_source"


def renamed_columns(names: Iterable[str], reserved: Collection[str]) -> dict[str, str]:
    """Source column -> the name it travels under: unchanged, unless `reserved` (the names a
    step or a writer fills itself, such as `similarity` or `file_name`) holds it; then it gets
    the suffix `_from_source` (again while that name is taken), so it never overwrites nor is
    overwritten: `similarity` -> `similarity_from_source`, `file_name` -> `file_name_from_source`."""
    names = list(dict.fromkeys(names))
    taken = set(reserved) | set(names)
    out: dict[str, str] = {}
    for name in names:
        new = name
        if name in reserved:
            while new in taken:
                new += SOURCE_SUFFIX
            taken.add(new)
        out[name] = new
    return out


def renamed_schema(schema: pa.Schema, reserved: Collection[str]) -> pa.Schema:
    """`schema` with its fields renamed as `renamed_columns` does."""
    names = renamed_columns(schema.names, reserved)
    return pa.schema([f.with_name(names[f.name]) for f in schema])


def json_text(value: Any) -> Any:
    """Nested JSON values (objects, lists) as their JSON text, so they travel as one scalar."""
    return json.dumps(value, sort_keys=True) if isinstance(value, (dict, list)) else value


INT64_RANGE = range(-(2**63), 2**63)


class FieldTypes:
    """The Arrow type each field of a stream of JSON objects needs, learnt one object at a time
    (memory: one entry per field name, not per object): int64, float64, bool or string;
    mixed types become string (ints and floats: float64); a field only ever null is of the
    null type, which widens to any other shard's."""

    def __init__(self) -> None:
        self.kinds: dict[str, set[str]] = {}

    def add(self, values: Mapping[str, Any]) -> None:
        for name, value in values.items():
            self.kinds.setdefault(name, set()).add(_kind(value))

    def schema(self, *, known: pa.Schema) -> pa.Schema:
        """`known`, then every other field in first-seen order."""
        extra = [pa.field(n, _type_of(k)) for n, k in self.kinds.items() if n not in set(known.names)]
        return pa.schema([*known, *extra])


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int" if value in INT64_RANGE else "string"
    return "float" if isinstance(value, float) else "string"


def _type_of(kinds: set[str]) -> pa.DataType:
    kinds = kinds - {"null"}
    if not kinds:
        return pa.null()
    if kinds <= {"int", "float"}:
        return pa.int64() if kinds == {"int"} else pa.float64()
    return pa.bool_() if kinds == {"bool"} else pa.string()
