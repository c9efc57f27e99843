"""Rendered scenes with a known share of wrong captions, for checking what a threshold removes.

A chosen `fraction` of the scenes get the caption of another chosen scene: the chosen
captions are rotated one step along a seeded order (scene a gets b's caption, b gets c's,
..., the last gets a's). A rotation rather than swaps in twos: when two pairs exchange their
captions, a projection that learnt the right content of both scores the one wrong pair as
well as it scored the other during training, so every wrong pair would have a twin in the
training data. A wrong caption in the wild comes from somewhere else, not from its
partner's image; a long rotation models that.
"""

from __future__ import annotations

import dataclasses
import random
from dataclasses import dataclass
from pathlib import Path

from curate.synthetic.scenes import Scene, render_scene
from curate.synthetic.shards import member_name, write_scenes


@dataclass(frozen=True)
class SwappedScenes:
    """The shards written, and which keys hold another scene's caption (with their true caption)."""

    shards: list[Path]
    true_captions: dict[str, str]  # key -> the caption that describes its image
    swapped: frozenset[str]  # keys whose caption belongs to another scene


def rotate_captions(scenes: list[Scene], *, fraction: float, seed: int) -> tuple[list[Scene], set[int]]:
    """The scenes with `fraction` of them (at least 2) given the caption of the next chosen one."""
    rng = random.Random(f"curate-swaps:{seed}")
    chosen = rng.sample(range(len(scenes)), max(2, round(fraction * len(scenes))))
    out = list(scenes)
    for position, index in enumerate(chosen):
        donor = scenes[chosen[(position + 1) % len(chosen)]]
        out[index] = dataclasses.replace(scenes[index], caption=donor.caption)
    return out, {scenes[i].index for i in chosen if out[i].caption != scenes[i].caption}


def write_swapped_scenes(folder: Path, *, count: int, shards: int, fraction: float = 0.1, seed: int = 0,
                         first: int = 0) -> SwappedScenes:
    """`count` JPEG scenes (indices from `first`) in `shards` WebDataset tars, `fraction` of their
    captions rotated; identical inputs give identical bytes."""
    scenes = [render_scene(first + i, image_format="JPEG") for i in range(count)]
    rotated, swapped = rotate_captions(scenes, fraction=fraction, seed=seed)
    captions = {s.index: s.caption for s in scenes}
    paths, truth = [], {}
    for shard in range(shards):
        path = folder / f"{shard:05d}.tar"
        part = rotated[shard::shards]
        paths.append(write_scenes(path, "webdataset", part))
        truth.update({f"{shard:05d}/{member_name(s.index)}": captions[s.index] for s in part})
    keys = {key for key in truth if int(key.rsplit("-", 1)[1]) in swapped}
    return SwappedScenes(paths, truth, frozenset(keys))
