"""Judging captions of rendered single-object scenes."""

from __future__ import annotations

from curate.synthetic.caption_scenes import caption_words
from curate.synthetic.scenes import Scene

CAPTION_WORDS = caption_words()


def names_object(caption: str, scene: Scene) -> bool:
    """Whether `caption` says the scene's colour immediately before its shape ("red circle")."""
    obj = scene.objects[0]
    return f"{obj.colour} {obj.shape}" in caption.lower()
