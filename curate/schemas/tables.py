"""Arrow schemas of the on-disk tables and the JSON metadata stored inside them.

These are the contracts between steps (see docs/formats.md). A version number travels in
every file so a later step can refuse a file it does not understand.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

import pyarrow as pa

SCHEMA_VERSION = 1
METADATA_KEY = b"curate"

ERRORS_SCHEMA = pa.schema(
    [
        pa.field("key", pa.string(), nullable=False),
        pa.field("stage", pa.string(), nullable=False),
        pa.field("error", pa.string(), nullable=False),
        pa.field("message", pa.string(), nullable=False),
    ]
)


@dataclass(frozen=True)
class EncoderInfo:
    """What produced a vector column: enough to refuse mixing vectors of different encoders."""

    model: str
    dim: int
    kind: str  # "image" or "text"
    settings: dict[str, Any] = field(default_factory=dict)

    def signature(self) -> str:
        """The identity that must match between embeddings and a projection card."""
        return f"{self.model}|{self.dim}|{json.dumps(self.settings, sort_keys=True)}"


@dataclass(frozen=True)
class EmbeddingsInfo:
    """The schema metadata of an `embeddings/<shard-id>.parquet` file."""

    shard_id: str
    source: str
    format: str
    image_encoder: EncoderInfo
    text_encoder: EncoderInfo
    versions: dict[str, str]
    limit: int | None = None
    schema_version: int = SCHEMA_VERSION

    def to_bytes(self) -> bytes:
        return json.dumps(asdict(self), sort_keys=True).encode()

    @classmethod
    def from_bytes(cls, raw: bytes) -> "EmbeddingsInfo":
        data = json.loads(raw)
        data["image_encoder"] = EncoderInfo(**data["image_encoder"])
        data["text_encoder"] = EncoderInfo(**data["text_encoder"])
        return cls(**data)


@dataclass(frozen=True)
class ScoresInfo:
    """The schema metadata of a `scores/<shard-id>.parquet` file.

    `source` and `format` point back at the shard so `filter` can re-read the original image
    bytes; `projection` is the fingerprint of the projection card that produced the scores.
    """

    shard_id: str
    source: str
    format: str
    projection: str
    projection_dir: str
    versions: dict[str, str]
    schema_version: int = SCHEMA_VERSION

    def to_bytes(self) -> bytes:
        return json.dumps(asdict(self), sort_keys=True).encode()

    @classmethod
    def from_bytes(cls, raw: bytes) -> "ScoresInfo":
        return cls(**json.loads(raw))


def read_scores_info(schema: pa.Schema) -> ScoresInfo:
    """Parse the metadata of a scores file; raises KeyError when it is not one."""
    return ScoresInfo.from_bytes(schema.metadata[METADATA_KEY])


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


def scores_schema(info: ScoresInfo, meta_schema: pa.Schema) -> pa.Schema:
    """key, text, similarity (float32 cosine), then the meta columns, with `info` attached."""
    fields = [
        pa.field("key", pa.string(), nullable=False),
        pa.field("text", pa.string()),
        pa.field("similarity", pa.float32(), nullable=False),
    ]
    fields += [f for f in meta_schema if f.name not in RESERVED_COLUMNS]
    return pa.schema(fields, metadata={METADATA_KEY: info.to_bytes()})


RESERVED_COLUMNS = frozenset({"key", "text", "image_emb", "text_emb", "similarity", "image"})


def read_embeddings_info(schema: pa.Schema) -> EmbeddingsInfo:
    """Parse the metadata of an embeddings file; raises KeyError when it is not one."""
    return EmbeddingsInfo.from_bytes(schema.metadata[METADATA_KEY])
