"""What a decode worker learns of each pair besides its pixels: the pair facts.

Sources often say nothing of an image's size, or state the size it had before a resize; the
filters the field runs need the image as it really is (DataComp's smaller side >= 200 px and
aspect ratio <= 3) and the caption's language (English only). Both are known for free while
a batch is decoded, so the decode worker records them once per pair and `embed` writes them
beside the vectors (`schemas.tables.PAIR_FACTS`); `score` carries them into the scores, where
`filter --where` and `--recipe` read them.

This module imports no torch: decode workers load it.
"""

from __future__ import annotations

from typing import Any

from curate.models.language import identifier, identify
from curate.models.preprocess import DecodedBatch, ImagePreprocess, decode_batch


def decode_pairs(payload: tuple[list[bytes], list[str]], prep: ImagePreprocess) -> DecodedBatch:
    """Decode a batch's images and identify the languages of the captions whose image decoded."""
    images, texts = payload
    decoded = decode_batch(images, prep)
    decoded.languages = identify([texts[i] for i in decoded.ok])
    return decoded


def warm_decoder() -> None:
    """Load what a decode worker's first batch needs (the language model takes about a second),
    run as the worker starts: `embed` starts its workers before loading the encoders, so this
    happens while the model loads instead of while the model waits for its first batch."""
    identifier()


def fact_columns(decoded: DecodedBatch) -> dict[str, list[Any]]:
    """The pair-fact columns of the decoded rows (those in `decoded.ok`), in that order."""
    return {
        "decoded_width": [s.width for s in decoded.sizes],
        "decoded_height": [s.height for s in decoded.sizes],
        "decoded_format": [s.format for s in decoded.sizes],
        "language": [language for language, _ in decoded.languages],
        "language_confidence": [confidence for _, confidence in decoded.languages],
    }
