"""Rendered-scene subsets for the captioner's tests and demo: one large object per picture.

Single-object scenes have short templated captions (`a large red circle on a white
background`) whose colour and shape a tiny captioner can learn in seconds from a random
image tower, so a test can check that captions follow the picture and not just the template.
"""

from __future__ import annotations

from pathlib import Path

from curate.synthetic import scenes
from curate.synthetic.scenes import Scene, plan_scene, render_scene
from curate.synthetic.shards import write_scenes

FILLER_WORDS = ("a", "an", "and", "on", "the", "of", "background")


def caption_words() -> list[str]:
    """Every word a scene caption can use: the vocabulary of a tiny word-level decoder."""
    words = set(FILLER_WORDS)
    for group in (scenes.COLOURS, scenes.BACKGROUNDS, scenes.SIZES, scenes.POSITIONS, scenes.SHAPES):
        for name in group:
            words.update(name.split())
    return sorted(words)


def single_object_scenes(count: int, *, start: int = 0, size: int = 64) -> list[Scene]:
    """The first `count` scenes (from index `start`) holding one large object."""
    found: list[Scene] = []
    index = start
    while len(found) < count:
        _, objects = plan_scene(index)
        if len(objects) == 1 and objects[0].size == "large":
            found.append(render_scene(index, size=size))
        index += 1
    return found


def write_subset(folder: Path, found: list[Scene], *, fmt: str = "parquet", shards: int = 2) -> Path:
    """`found` split over `shards` shards of `fmt` ("parquet" or "webdataset") under `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    per = -(-len(found) // shards)
    suffix = ".parquet" if fmt == "parquet" else ".tar"
    for n in range(shards):
        part = found[n * per:(n + 1) * per]
        if part:
            write_scenes(folder / f"subset-{n:05d}{suffix}", fmt, part)
    return folder
