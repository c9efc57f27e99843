"""Meta values with the Arrow types a reader announced before iterating.

Sources such as JSON sidecars and CSV cells carry loosely typed values; a reader fixes the
types up front (`meta_schema`) so downstream writers can stream, and these helpers make
every yielded `meta` dict hold exactly those fields, with values of those types or None.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

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
