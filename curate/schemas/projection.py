"""The projection card: what a trained projection was made from and how well it aligns.

`card.json` sits beside the safetensors weights. `score` reads it to refuse embeddings from
other encoders, `filter` and `index` copy its `fingerprint` into their outputs so every
score can be traced to the exact weights that produced it.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from curate.schemas.tables import SCHEMA_VERSION, EncoderInfo

PROJECTION_LOSSES = ("contrastive", "cosine")
CARD_FILE = "card.json"
WEIGHTS_FILE = "projection.safetensors"


@dataclass(frozen=True)
class ValidationMetrics:
    """Held-out alignment figures; `mismatched` pairs are images with shuffled captions."""

    pairs: int
    roc_auc: float
    image_to_text_r1: float
    image_to_text_r5: float
    image_to_text_r10: float
    text_to_image_r1: float
    text_to_image_r5: float
    text_to_image_r10: float
    matched_mean: float
    matched_std: float
    mismatched_mean: float
    mismatched_std: float


@dataclass(frozen=True)
class TrainingData:
    """Which pairs trained the projection: enough to tell whether two cards saw the same data."""

    fingerprint: str  # sha256 over the embeddings files' identities and every key with its split
    files: int
    train_pairs: int
    val_pairs: int
    dropped_non_finite: int = 0


@dataclass(frozen=True)
class ProjectionCard:
    """Everything needed to rebuild, trust and trace a projection (`PROJ_DIR/card.json`)."""

    loss: str
    image_encoder: EncoderInfo
    text_encoder: EncoderInfo
    out_dim: int
    temperature: float | None  # 1 / logit scale for contrastive; None for cosine
    hyper: dict[str, Any]
    seed: int
    data: TrainingData
    metrics: ValidationMetrics
    fingerprint: str  # sha256 of the weights file
    versions: dict[str, str] = field(default_factory=dict)
    schema_version: int = SCHEMA_VERSION

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "ProjectionCard":
        """Rebuild the nested dataclasses; raises KeyError/TypeError on a malformed card."""
        data = dict(data)
        data["image_encoder"] = EncoderInfo(**data["image_encoder"])
        data["text_encoder"] = EncoderInfo(**data["text_encoder"])
        data["data"] = TrainingData(**data["data"])
        data["metrics"] = ValidationMetrics(**data["metrics"])
        return cls(**data)

    @classmethod
    def from_text(cls, text: str) -> "ProjectionCard":
        return cls.from_json(json.loads(text))
