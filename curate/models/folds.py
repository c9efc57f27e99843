"""Out-of-fold scoring: each pair scored by a projection that never saw it in training.

A projection trained on the run it then scores has seen every pair, the wrong ones too: a
caption that belongs to another picture was a training positive, so it scores higher than a
fresh mismatch would, and no threshold can tell it from a true pair. `curate train --folds K`
also trains K projections, projection k on every pair outside fold k; a pair of fold k is
scored by projection k. A pair's fold is a pure function of its key (64 salted hash bits
modulo K), so train and score agree on it whatever the file order, and across reruns.

`PairScorer` is what scoring holds: the K fold projections, or the one projection of a card
without folds (every pair then lies in fold 0).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from curate.errors import CurateError
from curate.models.projection import ArrayLike, Projection, load_projection, projection_from_card
from curate.schemas.projection import CARD_FILE, FOLDS_DIR, ProjectionCard

FOLD_SALT = b"curate-fold"


def key_hash(key: str, salt: bytes) -> int:
    """64 bits of a salted blake2b of the key: stable across runs, platforms and versions."""
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8, key=salt).digest(), "big")


def fold_of(keys: Sequence[str], folds: int) -> np.ndarray:
    """The fold (0..folds-1, int64) of each key; all 0 when there are no folds."""
    if folds <= 1:
        return np.zeros(len(keys), dtype=np.int64)
    return np.fromiter((key_hash(k, FOLD_SALT) % folds for k in keys), dtype=np.int64, count=len(keys))


@dataclass
class PairScorer:
    """Scores pairs with the projection of their fold: `models[k]` scores the keys of fold k."""

    models: tuple[Projection, ...]

    @property
    def folds(self) -> int:
        return len(self.models)

    @property
    def extra_score_names(self) -> tuple[str, ...]:
        return self.models[0].extra_score_names

    def extra_scores(self, similarity: np.ndarray) -> dict[str, np.ndarray]:
        return self.models[0].extra_scores(similarity)

    def fold_of(self, keys: Sequence[str]) -> np.ndarray:
        return fold_of(keys, self.folds)

    def similarity(self, keys: Sequence[str], image: ArrayLike, text: ArrayLike) -> np.ndarray:
        """Row-wise cosine of each pair under its own fold's projection: float32 (N,)."""
        if self.folds == 1:
            return self.models[0].similarity(image, text)
        fold = self.fold_of(keys)
        out = np.zeros(len(fold), dtype=np.float32)
        for k, model in enumerate(self.models):
            rows = np.flatnonzero(fold == k)
            if len(rows):
                out[rows] = model.similarity(image[rows], text[rows])
        return out


def load_scorer(folder: Path, card: ProjectionCard, *, device: str | torch.device = "cpu") -> PairScorer:
    """What scores with `card`: its fold projections when it has them (each checked against the
    fingerprint the card names), else the projection itself."""
    if card.folds is None:
        return PairScorer((projection_from_card(card, folder, device=device),))
    models = []
    for k, fingerprint in enumerate(card.folds.fingerprints):
        model, fold_card = load_projection(Path(folder) / FOLDS_DIR / str(k), device=device)
        if fold_card.fingerprint != fingerprint:
            raise CurateError(f"{Path(folder) / FOLDS_DIR / str(k)} does not hold the fold projection "
                              f"{Path(folder) / CARD_FILE} names; retrain it.")
        models.append(model)
    return PairScorer(tuple(models))
