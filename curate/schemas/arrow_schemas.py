"""Arrow schemas of the run's tables: what every embeddings, errors and scores file holds.

Vectors are float16 fixed-size lists (half the bytes, ample precision); the JSON metadata
(`schemas/tables.py`) rides in each file's schema, so vectors, ids and provenance never drift
apart.
"""

from __future__ import annotations

import pyarrow as pa

from curate.schemas.tables import (
    METADATA_KEY,
    RESERVED_COLUMNS,
    EmbeddingsInfo,
    ScoresInfo,
)

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


def scores_schema(info: ScoresInfo, meta_schema: pa.Schema, *, extra: tuple[str, ...] = ()) -> pa.Schema:
    """key, text, similarity (float32 cosine), the projection's `extra` float32 scores (SigLIP's
    match probability), then the meta columns, with `info` attached."""
    fields = [
        pa.field("key", pa.string(), nullable=False),
        pa.field("text", pa.string()),
        pa.field("similarity", pa.float32(), nullable=False),
    ]
    fields += [pa.field(name, pa.float32(), nullable=False) for name in extra]
    fields += [f for f in meta_schema if f.name not in RESERVED_COLUMNS and f.name not in extra]
    return pa.schema(fields, metadata={METADATA_KEY: info.to_bytes()})
