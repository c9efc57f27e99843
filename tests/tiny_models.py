"""Tiny encoders built from configs and saved to disk, loaded back like users' models."""

from __future__ import annotations

from pathlib import Path

from curate.models.builders import build_bert, build_resnet
from curate.sample import scenes

EXTRA_WORDS = "a an and on the of picture photo shape".split()


def scene_words() -> list[str]:
    """Every word a scene caption can use, so the tiny tokenizer knows them all."""
    words = set(EXTRA_WORDS)
    for group in (scenes.COLOURS, scenes.BACKGROUNDS, scenes.SIZES, scenes.POSITIONS, scenes.SHAPES):
        for name in group:
            words.update(name.split())
    return sorted(words)


def tiny_image_model(folder: Path) -> Path:
    """A 4-stage ResNet with 32-d pooled output and 64-px crops."""
    return build_resnet(folder, tiny=True, crop=64)


def tiny_text_model(folder: Path) -> Path:
    """A 2-layer, 32-wide BERT over the scene vocabulary."""
    return build_bert(folder, words=scene_words())
