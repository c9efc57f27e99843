"""The run's tables and the JSON metadata stored inside their files.

These are the contracts between steps (see docs/formats.md). A version number travels in
every file so a later step can refuse a file it does not understand. The Arrow schemas of
the tables are in `schemas/arrow_schemas.py` (this module imports no pyarrow, so configs and
cards stay light to import).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pyarrow as pa

SCHEMA_VERSION = 2  # 2: scores carry false_match_rate and their null; embeddings the pair facts; cards their folds
METADATA_KEY = b"curate"


class Table(str, Enum):
    """The per-shard tables of a run directory: `RUN_DIR/<table>/<shard-id>.parquet`.

    A `str` enum, so a member is also the folder name and the DuckDB view name.
    """

    EMBEDDINGS = "embeddings"
    ERRORS = "errors"
    SCORES = "scores"

    def __str__(self) -> str:
        return self.value

@dataclass(frozen=True)
class JointSpace:
    """The shared space of a two-tower checkpoint (CLIP, SigLIP, ...), where its own towers'
    projected vectors are compared: enough to score pairs there without loading the model."""

    model_type: str  # the checkpoint's `config.model_type`: clip, siglip, ...
    dim: int
    logit_scale: float  # exp of the learned log scale: logits = logit_scale * cosine (+ logit_bias)
    logit_bias: float | None = None  # SigLIP's; None for softmax-trained models (CLIP)


@dataclass(frozen=True)
class EncoderInfo:
    """What produced a vector column: enough to refuse mixing vectors of different encoders."""

    model: str
    dim: int
    kind: str  # "image" or "text"
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def joint_space(self) -> JointSpace | None:
        """The joint space of a CLIP-family tower; None for an encoder of its own (ResNet, BERT)."""
        raw = self.settings.get("joint_space")
        return JointSpace(**raw) if raw else None

    def signature(self) -> str:
        """The identity that must match between embeddings and a projection card."""
        return f"{self.model}|{self.dim}|{json.dumps(self.settings, sort_keys=True)}"

    def difference(self, want: "EncoderInfo") -> str:
        """'' when these vectors are what `want` asks for, else what differs, in words.

        `want` may be partial (what a command line names before any model is loaded): a
        `dim` of 0 accepts any size, and only the settings both sides name are compared (a
        CLIP-family text tower records no pooling: `--text-pooling` does not apply to it).
        """
        if self.model != want.model or (want.dim and self.dim != want.dim):
            return f"{self.model} ({self.dim}-d), but {want.model} ({want.dim or 'any'}-d) was asked for"
        named = set(want.settings) & set(self.settings) if not want.dim else set(want.settings) | set(self.settings)
        keys = sorted(k for k in named if self.settings.get(k) != want.settings.get(k))
        if not keys:
            return ""
        ours = ", ".join(f"{k}={self.settings.get(k)}" for k in keys)
        theirs = ", ".join(f"{k}={want.settings.get(k)}" for k in keys)
        return f"{self.model} with {ours}, but {theirs} was asked for"


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
    columns: dict[str, str] = field(default_factory=dict)  # the user's --image-column ... choices
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
class NullInfo:
    """The null distribution of a scored run (`RUN_DIR/null/<scoring>.parquet`): mismatched pairs
    of the run (the image of one pair with the caption of another), scored as its pairs are.

    Its identity is the scoring projection (`projection`: the card's scoring fingerprint), the
    embeddings it was drawn from, the seed and the size; `digest` names its scores, so a scores
    file can tell whether its `false_match_rate` was computed against the null there now.
    """

    projection: str
    folds: int  # 1, or the card's out-of-fold projections: pairs are drawn within a fold, scored by its projection
    seed: int
    size: int  # mismatched pairs asked for
    pairs: int  # mismatched pairs scored (all of them within folds, for a run too small for `size`)
    images: int  # sampled pairs whose images and captions were recombined
    embeddings: str  # digest of the embeddings files' names, rows and sizes
    digest: str = ""  # sha256 of the folds and scores: what rates were computed against
    versions: dict[str, str] = field(default_factory=dict)
    schema_version: int = SCHEMA_VERSION

    def to_bytes(self) -> bytes:
        return json.dumps(asdict(self), sort_keys=True).encode()

    @classmethod
    def from_bytes(cls, raw: bytes) -> "NullInfo":
        return cls(**json.loads(raw))


@dataclass(frozen=True)
class ScoresInfo:
    """The schema metadata of a `scores/<shard-id>.parquet` file.

    `source` and `format` point back at the shard so `filter` can re-read the original image
    bytes; `projection` is the fingerprint of the projection card that produced the scores;
    `null` the null distribution its `false_match_rate` column was computed against (None for
    scores made before the column existed).
    """

    shard_id: str
    source: str
    format: str
    projection: str
    projection_dir: str
    versions: dict[str, str]
    columns: dict[str, str] = field(default_factory=dict)  # carried from the embeddings, for `filter`
    schema_version: int = SCHEMA_VERSION
    null: NullInfo | None = None

    def to_bytes(self) -> bytes:
        return json.dumps(asdict(self), sort_keys=True).encode()

    @classmethod
    def from_bytes(cls, raw: bytes) -> "ScoresInfo":
        data = json.loads(raw)
        data["null"] = NullInfo(**data["null"]) if data.get("null") else None
        return cls(**data)


def read_scores_info(schema: pa.Schema) -> ScoresInfo:
    """Parse the metadata of a scores file; raises KeyError when it is not one."""
    return ScoresInfo.from_bytes(schema.metadata[METADATA_KEY])


FALSE_MATCH_RATE = "false_match_rate"  # scores column: share of the run's mismatched pairs scoring at least as high
# What `embed` learns of each pair while decoding (embeddings and scores columns; a source's meta
# columns of the same names give way to them).
PAIR_FACTS = ("decoded_width", "decoded_height", "decoded_format", "language", "language_confidence")
RESERVED_COLUMNS = frozenset({"key", "text", "image_emb", "text_emb", "similarity", "match_probability", "image",
                              FALSE_MATCH_RATE})


def read_embeddings_info(schema: pa.Schema) -> EmbeddingsInfo:
    """Parse the metadata of an embeddings file; raises KeyError when it is not one."""
    return EmbeddingsInfo.from_bytes(schema.metadata[METADATA_KEY])
