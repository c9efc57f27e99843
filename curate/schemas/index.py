"""Contracts of `RUN_DIR/index/` and `RUN_DIR/dedup/`: file names, Arrow schemas, cards.

`index/` holds one FAISS file per side (`image.faiss`, `text.faiss`) over the projected,
L2-normalised vectors, `ids.parquet` mapping FAISS ids (row numbers) back to keys, and
`card.json`, written last, which says how the indexes were built and how good they are.
`search` and `dedup` trust an index only through its card.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

import pyarrow as pa

from curate.schemas.tables import SCHEMA_VERSION, EncoderInfo

SIDES = ("image", "text")
INDEX_CARD_FILE = "card.json"
IDS_FILE = "ids.parquet"
DEDUP_FILE = "dedup.parquet"
DEDUP_SUMMARY_FILE = "summary.json"
RECALL_K = 10

IDS_SCHEMA = pa.schema(
    [
        pa.field("id", pa.int64(), nullable=False),
        pa.field("key", pa.string(), nullable=False),
        pa.field("shard", pa.string(), nullable=False),
    ]
)

DEDUP_SCHEMA = pa.schema(
    [
        pa.field("key", pa.string(), nullable=False),
        pa.field("shard", pa.string(), nullable=False),
        pa.field("group", pa.int64(), nullable=False),  # smallest index id in the group
        pa.field("group_size", pa.int32(), nullable=False),
        pa.field("kept", pa.bool_(), nullable=False),
    ]
)


def index_file(side: str) -> str:
    """`image.faiss` / `text.faiss`."""
    return f"{side}.faiss"


@dataclass(frozen=True)
class SideIndex:
    """One FAISS index: what it is, how it was tuned, what it costs and how exact it is."""

    kind: str  # flat | ivf-flat | ivf-pq | hnsw
    factory: str  # the faiss.index_factory string it was built from
    build: dict[str, int]  # nlist, m, M, efConstruction, train_rows ...
    search: dict[str, int]  # nprobe / efSearch / k_factor_rf chosen for the target recall
    recall_at_10: float  # measured against exact search on `recall_queries` indexed vectors
    recall_queries: int
    memory_bytes: int  # estimate used for the choice
    file_bytes: int
    seconds: dict[str, float]  # train, add, tune, write
    gpu: bool


@dataclass(frozen=True)
class IndexCard:
    """`RUN_DIR/index/card.json`: enough to reload, trust and trace both indexes."""

    rows: int
    dim: int
    shards: int
    embeddings_fingerprint: str  # files and row counts the index was built from
    projection_dir: str
    projection_fingerprint: str
    image_encoder: EncoderInfo
    text_encoder: EncoderInfo
    requested_type: str
    memory_budget: int
    target_recall: float
    indexes: dict[str, SideIndex]
    seconds: dict[str, float]  # project (shared pass), per-side totals, all
    versions: dict[str, str] = field(default_factory=dict)
    schema_version: int = SCHEMA_VERSION

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "IndexCard":
        """Rebuild the nested dataclasses; raises KeyError/TypeError on a malformed card."""
        data = dict(data)
        data["image_encoder"] = EncoderInfo(**data["image_encoder"])
        data["text_encoder"] = EncoderInfo(**data["text_encoder"])
        data["indexes"] = {side: SideIndex(**entry) for side, entry in data["indexes"].items()}
        return cls(**data)

    @classmethod
    def from_text(cls, text: str) -> "IndexCard":
        return cls.from_json(json.loads(text))


@dataclass(frozen=True)
class DedupSummary:
    """`RUN_DIR/dedup/summary.json`: what was compared, what was found, how long it took."""

    rows: int
    groups: int  # groups of two or more near-duplicates
    dropped: int  # rows with kept = false
    threshold: float
    neighbours: int
    space: str  # which vectors were compared
    kept_by: str  # "similarity" (best-aligned pair, from scores/) or "first key"
    index_kind: str
    index_recall_at_10: float
    projection_fingerprint: str
    embeddings_fingerprint: str
    seconds: dict[str, float]
    versions: dict[str, str] = field(default_factory=dict)
    schema_version: int = SCHEMA_VERSION

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "DedupSummary":
        return cls(**data)


@dataclass(frozen=True)
class SearchHit:
    """One result of `curate search`: a pair of the run, ranked by cosine to the query."""

    rank: int
    key: str
    text: str | None
    similarity: float
    shard: str
