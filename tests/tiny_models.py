"""Tiny encoders built from configs and saved to disk, loaded back like users' models."""

from __future__ import annotations

from pathlib import Path

from curate.models.builders import build_bert, build_clip, build_resnet, build_siglip
from curate.synthetic.caption_scenes import caption_words

EXTRA_WORDS = "picture photo shape".split()


def scene_words() -> list[str]:
    """Every word a scene caption can use, so the tiny tokenizer knows them all."""
    return sorted(set(caption_words()) | set(EXTRA_WORDS))


def tiny_image_model(folder: Path) -> Path:
    """A 4-stage ResNet with 32-d pooled output and 64-px crops."""
    return build_resnet(folder, tiny=True, crop=64)


def tiny_text_model(folder: Path) -> Path:
    """A 2-layer, 32-wide BERT over the scene vocabulary."""
    return build_bert(folder, words=scene_words())


def tiny_clip_model(folder: Path) -> Path:
    """A two-tower CLIP (32-px ViT, 32-wide text transformer, 16-d joint space) over the scene words."""
    return build_clip(folder, words=scene_words())


def tiny_siglip_model(folder: Path) -> Path:
    """A two-tower SigLIP (32-px ViT, 64-token captions, sigmoid logit scale and bias) over the scene words."""
    return build_siglip(folder, words=scene_words())
