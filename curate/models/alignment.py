"""Scoring (image, text) pairs under a trained projection, from raw image bytes and strings.

`caption eval` uses it to ask how well a generated prompt fits its image in the same space
`score` and `filter` use; the encoders are the ones the projection card names, so the
figure is comparable with the subset's own similarity column.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from curate.models.image_encoder import ImageEncoder
from curate.models.preprocess import decode_batch
from curate.models.projection import load_projection
from curate.models.text_encoder import TextEncoder


class AlignmentScorer:
    """The projection of `folder` with its own image and text encoders."""

    def __init__(self, folder: Path, *, device: torch.device) -> None:
        self.projection, self.card = load_projection(folder, device=device)
        self.image = ImageEncoder(self.card.image_encoder.model, device=device)
        self.text = TextEncoder.from_info(self.card.text_encoder, device=device)

    def image_vectors(self, images: list[bytes]) -> np.ndarray:
        """(N, D) image vectors; rows of undecodable images are NaN so they drop out of means."""
        decoded = decode_batch(images, self.image.preprocess)
        out = np.full((len(images), self.image.dim), np.nan, dtype=np.float32)
        if decoded.ok:
            out[decoded.ok] = self.image.encode(decoded.pixels)
        return out

    def similarity(self, image_vectors: np.ndarray, texts: list[str]) -> np.ndarray:
        """Cosine of each image with its text in the projection's space: float32 (N,)."""
        scores = np.full(len(texts), np.nan, dtype=np.float32)
        ok = ~np.isnan(image_vectors).any(axis=1)
        if ok.any():
            kept = [t for t, keep in zip(texts, ok) if keep]
            scores[ok] = self.projection.similarity(image_vectors[ok], self.text.encode(kept))
        return scores
