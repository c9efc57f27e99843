"""Embedding one search query with the encoders a projection was trained on.

`search` must put a query in the same space as the indexed pairs, so the encoders and their
settings come from the projection card, never from options the user might get wrong. Only
the tower the query needs is loaded.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from curate.errors import CurateError
from curate.models.devices import resolve_device
from curate.models.image_encoder import ImageEncoder
from curate.models.preprocess import ImageDecodeError, decode_image
from curate.models.text_encoder import TextEncoder
from curate.schemas.projection import ProjectionCard


def embed_text_query(text: str, card: ProjectionCard, *, device: str = "auto") -> np.ndarray:
    """(1, text_dim) float32 features of `text`, pooled (or projected) and truncated as the card's encoder was."""
    info = card.text_encoder
    encoder = TextEncoder.from_info(info, device=resolve_device(device))  # a CLIP-family text tower for a native run
    _check_dim(encoder.dim, info.dim, info.model)
    return encoder.encode([text])


def embed_image_query(path: Path, card: ProjectionCard, *, device: str = "auto") -> np.ndarray:
    """(1, image_dim) float32 features of the image file at `path`."""
    if not Path(path).is_file():
        raise CurateError(f"Query image {path} does not exist.")
    encoder = ImageEncoder(card.image_encoder.model, device=resolve_device(device))
    _check_dim(encoder.dim, card.image_encoder.dim, card.image_encoder.model)
    try:
        pixels = decode_image(Path(path).read_bytes(), encoder.preprocess)
    except ImageDecodeError as exc:
        raise CurateError(f"Query image {path} cannot be used ({exc.kind}: {exc}).") from None
    return encoder.encode(pixels[None].copy())  # decode gives a read-only view; torch wants to own it


def _check_dim(actual: int, expected: int, model: str) -> None:
    if actual != expected:
        raise CurateError(f"{model} now gives {actual}-d vectors but the projection was trained on {expected}-d ones; "
                          "point the projection at the encoders it was trained with.")
