"""Arrow schemas of the run's tables: what every embeddings, errors and scores file holds.

Vectors are float16 fixed-size lists (half the bytes, ample precision); the JSON metadata
(`schemas/tables.py`) rides in each file's schema, so vectors, ids and provenance never drift
apart.
"""

from __future__ import annotations

from typing import Iterable

import pyarrow as pa

from curate.schemas.tables import (
    FALSE_MATCH_RATE,
    METADATA_KEY,
    PAIR_FACTS,
    RESERVED_COLUMNS,
    EmbeddingsInfo,
    NullInfo,
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


# What the decode step records of every pair (`PAIR_FACTS`): the image as decoded (sources often
# lack its size, or state another one) and the caption's language, identified once.
PAIR_FACT_FIELDS = (
    pa.field("decoded_width", pa.int32()),
    pa.field("decoded_height", pa.int32()),
    pa.field("decoded_format", pa.string()),  # Pillow's name, lower-case: jpeg, png, webp, ...
    pa.field("language", pa.string()),  # ISO 639-1 code of the caption's most likely language
    pa.field("language_confidence", pa.float32()),  # its probability among the identifier's languages
)
assert tuple(f.name for f in PAIR_FACT_FIELDS) == PAIR_FACTS


def embeddings_schema(info: EmbeddingsInfo, meta_schema: pa.Schema) -> pa.Schema:
    """key, text, image_emb, text_emb, the pair facts, then the source's meta columns, with `info` attached."""
    fields = [
        pa.field("key", pa.string(), nullable=False),
        pa.field("text", pa.string()),
        pa.field("image_emb", vector_type(info.image_encoder.dim), nullable=False),
        pa.field("text_emb", vector_type(info.text_encoder.dim), nullable=False),
        *PAIR_FACT_FIELDS,
    ]
    fields += [f for f in meta_schema if f.name not in RESERVED_COLUMNS and f.name not in PAIR_FACTS]
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


def scores_columns(meta_schema: pa.Schema, *, extra: tuple[str, ...] = (), rated: bool = False) -> pa.Schema:
    """key, text, similarity (float32 cosine), the projection's `extra` float32 scores (SigLIP's
    match probability), `false_match_rate` (float64, when `rated`), then the meta columns (the
    pair facts among them): a scores file's columns."""
    fields = [
        pa.field("key", pa.string(), nullable=False),
        pa.field("text", pa.string()),
        pa.field("similarity", pa.float32(), nullable=False),
    ]
    fields += [pa.field(name, pa.float32(), nullable=False) for name in extra]
    if rated:
        fields.append(pa.field(FALSE_MATCH_RATE, pa.float64()))  # NaN where no null could be drawn
    return pa.schema(fields + [f for f in meta_schema if f.name not in RESERVED_COLUMNS and f.name not in extra])


def scores_schema(info: ScoresInfo, meta_schema: pa.Schema, *, extra: tuple[str, ...] = (),
                  rated: bool = False) -> pa.Schema:
    """`scores_columns`, with `info` attached."""
    return scores_columns(meta_schema, extra=extra, rated=rated).with_metadata({METADATA_KEY: info.to_bytes()})


def null_schema(info: NullInfo) -> pa.Schema:
    """The null distribution's pairs: which fold, which image, which caption, their score."""
    return pa.schema([
        pa.field("fold", pa.int32(), nullable=False),
        pa.field("image_key", pa.string(), nullable=False),
        pa.field("text_key", pa.string(), nullable=False),
        pa.field("similarity", pa.float32(), nullable=False),
    ], metadata={METADATA_KEY: info.to_bytes()})
