"""The learned projections that turn an (image vector, text vector) pair into one score.

Two objectives share one interface, so `score`, `filter` and a FAISS index never care which
one a card names:

* `cosine` (the published baseline): one linear layer maps standardised image features into
  the text encoder's space; trained with 1 - cosine against the raw text vector.
* `contrastive` (default): both sides standardised and projected linearly into a shared
  `dim`-d space; trained with a symmetric InfoNCE loss over in-batch negatives with a learned
  temperature (CLIP's logit scale, clamped to at most 100).
* `native` (nothing to train): vectors of a CLIP-family checkpoint's two towers already share
  a space; the score is their cosine there, and for SigLIP also the model's own match
  probability, `sigmoid(logit_scale * cosine + logit_bias)`.

`project_image` / `project_text` give L2-normalised float32 vectors in the space where the
score is a cosine; `similarity` is that cosine row by row. Standardisation statistics are
buffers, so they travel inside the weights file and cannot drift from it.
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor, nn

from curate.errors import CurateError
from curate.io.atomic import atomic_path, write_json_atomic
from curate.schemas.projection import (
    CARD_FILE,
    MATCH_PROBABILITY,
    NATIVE,
    WEIGHTS_FILE,
    ProjectionCard,
    card_digest,
    shared_joint_space,
)
from curate.schemas.tables import JointSpace

ArrayLike = np.ndarray | Tensor
INIT_LOGIT_SCALE = math.log(1 / 0.07)  # CLIP's initial temperature
MAX_LOGIT_SCALE = math.log(100.0)  # CLIP's clamp
APPLY_ROWS = 8192  # rows per matmul when projecting large arrays


class Standardiser(nn.Module):
    """(x - mean) / std with the training split's statistics, stored as buffers."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("inv_std", torch.ones(dim))

    def fit(self, mean: np.ndarray, std: np.ndarray) -> None:
        """Pooled encoder features share a large common offset; removing it lets a linear map see content."""
        self.mean.copy_(torch.as_tensor(mean, dtype=torch.float32))
        self.inv_std.copy_(1.0 / torch.as_tensor(np.maximum(std, 1e-6), dtype=torch.float32))

    def forward(self, x: Tensor) -> Tensor:
        return (x - self.mean) * self.inv_std


def seeded_linear(n_in: int, n_out: int, *, generator: torch.Generator, bias: bool) -> nn.Linear:
    """A linear layer initialised from `generator` only, so weights never depend on global RNG state."""
    layer = nn.Linear(n_in, n_out, bias=bias)
    with torch.no_grad():
        layer.weight.copy_(torch.randn(n_out, n_in, generator=generator) / math.sqrt(n_in))
        if bias:
            layer.bias.zero_()
    return layer


class Projection(nn.Module):
    """Common interface: differentiable `embed_*` for training, numpy-friendly `project_*` for use."""

    loss_name: ClassVar[str]

    def __init__(self, image_dim: int, text_dim: int) -> None:
        super().__init__()
        self.image_dim, self.text_dim = image_dim, text_dim
        self.image_norm = Standardiser(image_dim)
        self.text_norm = Standardiser(text_dim)

    @property
    def out_dim(self) -> int:
        raise NotImplementedError

    @property
    def temperature(self) -> float | None:
        return None

    def embed_image(self, x: Tensor) -> Tensor:
        raise NotImplementedError

    def embed_text(self, x: Tensor) -> Tensor:
        raise NotImplementedError

    def loss(self, image: Tensor, text: Tensor) -> Tensor:
        raise NotImplementedError

    def after_step(self) -> None:
        """Hook run after each optimiser step (the contrastive scale clamp)."""

    @classmethod
    def from_card(cls, card: ProjectionCard, folder: Path) -> "Projection":
        """The trained projection a card describes, checking the weights are the ones it names."""
        weights = Path(folder) / WEIGHTS_FILE
        if not weights.is_file() or file_sha256(weights) != card.fingerprint:
            raise CurateError(f"{weights} is missing or does not match the fingerprint in {CARD_FILE}; retrain it.")
        from safetensors.torch import load_file

        model = build_projection(card.loss, image_dim=card.image_encoder.dim, text_dim=card.text_encoder.dim,
                                 dim=card.out_dim, seed=card.seed)
        model.load_state_dict(load_file(str(weights)), strict=True)
        return model

    @property
    def device(self) -> torch.device:
        return self.image_norm.mean.device  # a buffer: the native projection has no parameters

    @property
    def extra_score_names(self) -> tuple[str, ...]:
        """Score columns beside `similarity` (float32), in the order `extra_scores` gives them."""
        return ()

    def extra_scores(self, similarity: np.ndarray) -> dict[str, np.ndarray]:
        """Further per-pair figures derived from the similarities, by column name."""
        return {}

    def project_image(self, x: ArrayLike) -> np.ndarray:
        """Image encoder vectors (N, image_dim) -> L2-normalised float32 (N, out_dim)."""
        return self._project(self.embed_image, x, self.image_dim, "image")

    def project_text(self, x: ArrayLike) -> np.ndarray:
        """Text encoder vectors (N, text_dim) -> L2-normalised float32 (N, out_dim)."""
        return self._project(self.embed_text, x, self.text_dim, "text")

    def similarity(self, image: ArrayLike, text: ArrayLike) -> np.ndarray:
        """Row-wise cosine of each pair in the scoring space: float32 (N,)."""
        return np.einsum("nd,nd->n", self.project_image(image), self.project_text(text)).astype(np.float32)

    @torch.inference_mode()
    def _project(self, fn: Any, x: ArrayLike, dim: int, side: str) -> np.ndarray:
        if x.ndim != 2 or x.shape[1] != dim:
            raise CurateError(f"The projection expects {dim}-d {side} vectors; got shape {tuple(x.shape)}.")
        parts = [np.zeros((0, self.out_dim), dtype=np.float32)]
        for start in range(0, len(x), APPLY_ROWS):
            chunk = x[start:start + APPLY_ROWS]
            # a float32 copy per chunk: Arrow-backed float16 arrays are read-only, and memory stays bounded
            tensor = torch.from_numpy(np.array(chunk, dtype=np.float32)) if isinstance(chunk, np.ndarray) else chunk
            parts.append(fn(tensor.to(self.device, torch.float32)).float().cpu().numpy())
        return np.concatenate(parts)


class CosineProjection(Projection):
    """Image features -> text space, one linear layer; the text side is the raw normalised vector."""

    loss_name = "cosine"

    def __init__(self, image_dim: int, text_dim: int, *, dim: int, seed: int) -> None:
        super().__init__(image_dim, text_dim)
        generator = torch.Generator().manual_seed(seed)
        self.image_map = seeded_linear(image_dim, text_dim, generator=generator, bias=True)

    @property
    def out_dim(self) -> int:
        return self.text_dim

    def embed_image(self, x: Tensor) -> Tensor:
        return nn.functional.normalize(self.image_map(self.image_norm(x)), dim=-1)

    def embed_text(self, x: Tensor) -> Tensor:
        return nn.functional.normalize(x, dim=-1)

    def loss(self, image: Tensor, text: Tensor) -> Tensor:
        return 1.0 - (self.embed_image(image) * self.embed_text(text)).sum(-1).mean()


class ContrastiveProjection(Projection):
    """Both sides -> a shared `dim`-d space; symmetric InfoNCE with a learned temperature."""

    loss_name = "contrastive"

    def __init__(self, image_dim: int, text_dim: int, *, dim: int, seed: int) -> None:
        super().__init__(image_dim, text_dim)
        generator = torch.Generator().manual_seed(seed)
        self.image_map = seeded_linear(image_dim, dim, generator=generator, bias=False)
        self.text_map = seeded_linear(text_dim, dim, generator=generator, bias=False)
        self.logit_scale = nn.Parameter(torch.tensor(INIT_LOGIT_SCALE))

    @property
    def out_dim(self) -> int:
        return self.image_map.out_features

    @property
    def temperature(self) -> float:
        return float(1.0 / self.logit_scale.detach().exp())

    def embed_image(self, x: Tensor) -> Tensor:
        return nn.functional.normalize(self.image_map(self.image_norm(x)), dim=-1)

    def embed_text(self, x: Tensor) -> Tensor:
        return nn.functional.normalize(self.text_map(self.text_norm(x)), dim=-1)

    def loss(self, image: Tensor, text: Tensor) -> Tensor:
        logits = self.logit_scale.exp() * self.embed_image(image) @ self.embed_text(text).T
        target = torch.arange(len(logits), device=logits.device)
        return (nn.functional.cross_entropy(logits, target) + nn.functional.cross_entropy(logits.T, target)) / 2

    def after_step(self) -> None:
        with torch.no_grad():
            self.logit_scale.clamp_(0.0, MAX_LOGIT_SCALE)


class NativeProjection(Projection):
    """The joint space the vectors' own two-tower checkpoint was trained into: nothing learned.

    Both sides are only L2-normalised, so the similarity is the model's own cosine (the one
    LAION's 0.28 cut and DataComp's CLIP score use). A sigmoid-trained model (SigLIP) also
    gives its match probability.
    """

    loss_name = NATIVE

    def __init__(self, space: JointSpace) -> None:
        super().__init__(space.dim, space.dim)
        self.space = space

    @classmethod
    def from_card(cls, card: ProjectionCard, folder: Path) -> "Projection":
        """Rebuilt from the card alone (there are no weights), checking the card is unaltered."""
        if card_digest(card) != card.fingerprint:
            raise CurateError(f"{Path(folder) / CARD_FILE} does not match its own fingerprint; "
                              "rerun `curate score --projection native` to rewrite it.")
        return cls(shared_joint_space(card.image_encoder, card.text_encoder))

    @property
    def out_dim(self) -> int:
        return self.space.dim

    @property
    def temperature(self) -> float:
        return 1.0 / self.space.logit_scale

    def embed_image(self, x: Tensor) -> Tensor:
        return nn.functional.normalize(x, dim=-1)

    def embed_text(self, x: Tensor) -> Tensor:
        return nn.functional.normalize(x, dim=-1)

    def loss(self, image: Tensor, text: Tensor) -> Tensor:
        raise CurateError("The native projection is the model's own space; there is nothing to train.")

    @property
    def extra_score_names(self) -> tuple[str, ...]:
        return (MATCH_PROBABILITY,) if self.space.logit_bias is not None else ()

    def extra_scores(self, similarity: np.ndarray) -> dict[str, np.ndarray]:
        if self.space.logit_bias is None:
            return {}
        logits = self.space.logit_scale * similarity.astype(np.float64) + self.space.logit_bias
        return {MATCH_PROBABILITY: (0.5 * (1.0 + np.tanh(0.5 * logits))).astype(np.float32)}  # a sigmoid that never overflows


PROJECTIONS: dict[str, type[Projection]] = {cls.loss_name: cls for cls in (ContrastiveProjection, CosineProjection)}
KINDS: dict[str, type[Projection]] = {**PROJECTIONS, NATIVE: NativeProjection}  # what a card may name


def build_projection(loss: str, *, image_dim: int, text_dim: int, dim: int, seed: int = 0) -> Projection:
    """A freshly initialised projection for `loss`, refusing unknown names with the known ones."""
    if loss not in PROJECTIONS:
        raise CurateError(f"Unknown loss '{loss}'; known: {', '.join(sorted(PROJECTIONS))}.")
    return PROJECTIONS[loss](image_dim, text_dim, dim=dim, seed=seed)


def save_weights(model: Projection, folder: Path) -> str:
    """Write the weights atomically; returns their sha256, the projection's fingerprint."""
    from safetensors.torch import save

    state = {name: t.detach().cpu().contiguous() for name, t in sorted(model.state_dict().items())}
    payload = save(state, metadata={"loss": model.loss_name})
    with atomic_path(Path(folder) / WEIGHTS_FILE) as tmp:
        tmp.write_bytes(payload)
    return hashlib.sha256(payload).hexdigest()


def save_card(card: ProjectionCard, folder: Path) -> None:
    """Written after the weights: a card whose fingerprint matches the weights marks a finished projection."""
    write_json_atomic(Path(folder) / CARD_FILE, card.to_json())


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_card(folder: Path) -> ProjectionCard:
    """The card of a projection directory, or one line saying what is wrong with it."""
    path = Path(folder) / CARD_FILE
    if not Path(folder).is_dir():
        raise CurateError(f"Projection directory {folder} does not exist; run `curate train` first.")
    if not path.is_file():
        raise CurateError(f"{folder} has no {CARD_FILE}; it is not a projection made by `curate train`.")
    try:
        return ProjectionCard.from_text(path.read_text())
    except (ValueError, KeyError, TypeError) as exc:
        raise CurateError(f"{path} is not a valid projection card ({type(exc).__name__}: {exc}).") from None


def load_projection(folder: Path, *, device: str | torch.device = "cpu") -> tuple[Projection, ProjectionCard]:
    """Rebuild the projection a card describes (trained weights, or the native space)."""
    card = read_card(folder)
    return projection_from_card(card, folder, device=device), card


def projection_from_card(card: ProjectionCard, folder: Path, *, device: str | torch.device = "cpu") -> Projection:
    """The projection of a card already read, refusing kinds this version does not know."""
    if card.loss not in KINDS:
        raise CurateError(f"{Path(folder) / CARD_FILE} names the unknown projection '{card.loss}'; "
                          f"known: {', '.join(sorted(KINDS))}.")
    return KINDS[card.loss].from_card(card, folder).eval().to(device)
