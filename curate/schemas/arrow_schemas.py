"""Arrow schemas of the run's tables: what every embeddings, errors and scores file holds.

Vectors are float16 fixed-size lists (half the bytes, ample precision); the JSON metadata
(`schemas/tables.py`) rides in each file's schema, so vectors, ids and provenance never drift
apart.
"""

from __future__ import annotations

from typing import Iterable

import pyarrow as pa

from curate.schemas.tables import METADATA_KEY, RESERVED_COLUMNS, EmbeddingsInfo, ScoresInfo

ERRORS_SCHEMA = pa.schema(
    [
        pa.field("key", pa.string(), nullable=False),
        pa.field("stage", pa.string(), nullable=False),
        pa.field("error", pa.string(), nullable=False),
        pa.field("message", pa.string(), nullable=False),
    ]
)


def vector_type(dim: int) -> pa.DataType:
    """Vectors are stored as float16 fixed-size lists: half the bytes, ample precision."""
    return pa.list_(pa.float16(), dim)


def embeddings_schema(info: EmbeddingsInfo, meta_schema: pa.Schema) -> pa.Schema:
    """key, text, image_emb, text_emb, then the source's meta columns, with `info` attached."""
    fields = [
        pa.field("key", pa.string(), nullable=False),
        pa.field("text", pa.string()),
        pa.field("image_emb", vector_type(info.image_encoder.dim), nullable=False),
        pa.field("text_emb", vector_type(info.text_encoder.dim), nullable=False),
    ]
    fields += [f for f in meta_schema if f.name not in RESERVED_COLUMNS]
    return pa.schema(fields, metadata={METADATA_KEY: info.to_bytes()})


SCORES_COLUMNS = ("key", "text", "similarity")
SCORE_EXTRAS = ("match_probability",)  # further float32 scores a projection may give (SigLIP under `native`)


def unified_meta(schemas: Iterable[pa.Schema]) -> tuple[pa.Schema, frozenset[str]]:
    """One meta schema for tables that must stack: the union of the schemas' columns in
    first-seen order, types widened where they differ (uint16 and int64 -> int64). A column
    whose types cannot be merged (int64 in one, string in another) becomes string; its name
    is returned so the values are turned into text before writing."""
    by_name: dict[str, list[pa.Field]] = {}
    for schema in schemas:
        for field in schema:
            by_name.setdefault(field.name, []).append(field.remove_metadata())
    fields, as_text = [], set()
    for name, variants in by_name.items():
        try:
            fields.append(pa.unify_schemas([pa.schema([f]) for f in variants], promote_options="permissive")[0])
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
            fields.append(pa.field(name, pa.string()))
            as_text.add(name)
    return pa.schema(fields), frozenset(as_text)


def meta_of(schema: pa.Schema) -> pa.Schema:
    """The meta columns of an embeddings or scores file: everything but the step's own columns."""
    return pa.schema([f for f in schema if f.name not in RESERVED_COLUMNS])


def scores_columns(meta_schema: pa.Schema, *, extra: tuple[str, ...] = ()) -> pa.Schema:
    """key, text, similarity (float32 cosine), the projection's `extra` float32 scores (SigLIP's
    match probability), then the meta columns: a scores file's columns."""
    fields = [
        pa.field("key", pa.string(), nullable=False),
        pa.field("text", pa.string()),
        pa.field("similarity", pa.float32(), nullable=False),
    ]
    fields += [pa.field(name, pa.float32(), nullable=False) for name in extra]
    return pa.schema(fields + [f for f in meta_schema if f.name not in RESERVED_COLUMNS])


def scores_schema(info: ScoresInfo, meta_schema: pa.Schema, *, extra: tuple[str, ...] = ()) -> pa.Schema:
    """`scores_columns`, with `info` attached."""
    return scores_columns(meta_schema, extra=extra).with_metadata({METADATA_KEY: info.to_bytes()})
