"""The projection card: what a projection was made from and how well it aligns.

`card.json` sits beside the safetensors weights. `score` reads it to refuse embeddings from
other encoders, `filter` and `index` copy its `fingerprint` into their outputs so every
score can be traced to the exact weights that produced it.

The `native` projection is no training at all: the cosine in the joint space of the
CLIP-family checkpoint whose towers made the vectors. Its card names the encoders and their
joint space, has no weights file, and its fingerprint is the hash of the card itself.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from curate.errors import CurateError
from curate.schemas.tables import SCHEMA_VERSION, EncoderInfo, JointSpace

PROJECTION_LOSSES = ("contrastive", "cosine")  # what `curate train` learns
NATIVE = "native"  # `--projection native`: the encoders' own joint space, nothing learned
MATCH_PROBABILITY = "match_probability"  # SigLIP's sigmoid(logit_scale * cosine + logit_bias), a scores column
CARD_FILE = "card.json"
WEIGHTS_FILE = "projection.safetensors"
FOLDS_DIR = "folds"  # PROJ_DIR/folds/<k>/: the out-of-fold projections, each a projection folder of its own


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
class FoldsInfo:
    """The out-of-fold projections of `curate train --folds K` (`PROJ_DIR/folds/<k>/`): projection k
    was trained on every pair outside fold k, and scores the pairs of fold k."""

    count: int
    fingerprints: tuple[str, ...]  # the weights' sha256 of each fold's projection, in fold order
    pairs: tuple[int, ...] = ()  # pairs of each fold (held out from its projection)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "FoldsInfo":
        return cls(count=int(data["count"]), fingerprints=tuple(data["fingerprints"]), pairs=tuple(data.get("pairs", ())))


@dataclass(frozen=True)
class ProjectionCard:
    """Everything needed to rebuild, trust and trace a projection (`PROJ_DIR/card.json`)."""

    loss: str
    image_encoder: EncoderInfo
    text_encoder: EncoderInfo
    out_dim: int
    temperature: float | None  # 1 / logit scale for contrastive and native; None for cosine
    hyper: dict[str, Any]
    seed: int
    data: TrainingData | None  # None for native: nothing was trained
    metrics: ValidationMetrics | None
    fingerprint: str  # sha256 of the weights file (native: of the card's other fields)
    versions: dict[str, str] = field(default_factory=dict)
    schema_version: int = SCHEMA_VERSION
    folds: FoldsInfo | None = None  # out-of-fold projections (`curate train --folds K`); None: score with this one

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def scoring_fingerprint(self) -> str:
        """What scores pairs: the weights, or with folds the weights and every fold's weights."""
        if self.folds is None:
            return self.fingerprint
        joined = "|".join((self.fingerprint, *self.folds.fingerprints))
        return hashlib.sha256(joined.encode()).hexdigest()

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "ProjectionCard":
        """Rebuild the nested dataclasses; raises KeyError/TypeError on a malformed card."""
        data = dict(data)
        data["image_encoder"] = EncoderInfo(**data["image_encoder"])
        data["text_encoder"] = EncoderInfo(**data["text_encoder"])
        data["data"] = TrainingData(**data["data"]) if data["data"] is not None else None
        data["metrics"] = ValidationMetrics(**data["metrics"]) if data["metrics"] is not None else None
        data["folds"] = FoldsInfo.from_json(data["folds"]) if data.get("folds") else None
        return cls(**data)

    @classmethod
    def from_text(cls, text: str) -> "ProjectionCard":
        return cls.from_json(json.loads(text))


def is_native(projection: object) -> bool:
    """Whether a `--projection` value asks for the native space rather than naming a folder."""
    return str(projection) == NATIVE


def card_digest(card: ProjectionCard) -> str:
    """sha256 of every field but the fingerprint: the identity of a card that has no weights."""
    body = {k: v for k, v in card.to_json().items() if k != "fingerprint" and not (k == "folds" and v is None)}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def shared_joint_space(image: EncoderInfo, text: EncoderInfo) -> JointSpace:
    """The one joint space both towers project into, or one line on why they share none."""
    spaces = image.joint_space, text.joint_space
    if None in spaces:
        raise CurateError(
            f"--projection native scores in a CLIP-family model's own joint space, but these vectors come from "
            f"{image.model} + {text.model}, which share none; embed with --model (e.g. openai/clip-vit-base-patch32) "
            "or train a projection with `curate train` and pass its folder."
        )
    if image.model != text.model or spaces[0] != spaces[1]:
        raise CurateError(
            f"--projection native needs both towers from one checkpoint, but the image vectors come from {image.model} "
            f"and the text vectors from {text.model}; embed with --model, or train a projection on these vectors."
        )
    return spaces[0]  # type: ignore[return-value]


def native_card(image: EncoderInfo, text: EncoderInfo) -> ProjectionCard:
    """The card of the native projection over vectors of these two towers (refused without a shared space)."""
    space = shared_joint_space(image, text)
    card = ProjectionCard(
        loss=NATIVE, image_encoder=image, text_encoder=text, out_dim=space.dim, temperature=1.0 / space.logit_scale,
        hyper={"logit_scale": space.logit_scale, "logit_bias": space.logit_bias}, seed=0, data=None, metrics=None,
        fingerprint="",
    )
    return replace(card, fingerprint=card_digest(card))
