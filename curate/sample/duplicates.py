"""Rendered scenes with injected near-duplicates: resized and re-encoded copies of some of them.

`dedup` and its tests need a dataset whose true duplicate groups are known. The copies are
what a crawl really produces (the same picture served at another size and JPEG quality), and
the truth is decided by what was drawn: two scenes planned identically are one image too.
"""

from __future__ import annotations

import io
import random
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from curate.io.base import WRITERS
from curate.sample.scenes import plan_scene, render_scene
from curate.schemas.sample import Sample


@dataclass(frozen=True)
class DuplicateTruth:
    """Which keys show the same picture: `group[key]` is the same for all copies of one image."""

    group: dict[str, str]
    copies: list[str]  # keys of the injected copies
    shard: Path

    def same(self, a: str, b: str) -> bool:
        return self.group[a] == self.group[b]


def near_duplicate(image: bytes, *, scale: float, quality: int) -> bytes:
    """`image` resized by `scale` (bicubic) and re-encoded as JPEG at `quality`."""
    with Image.open(io.BytesIO(image)) as img:
        rgb = img.convert("RGB")
        size = (max(8, round(rgb.width * scale)), max(8, round(rgb.height * scale)))
        out = io.BytesIO()
        rgb.resize(size, Image.BICUBIC).save(out, format="JPEG", quality=quality)
    return out.getvalue()


def write_scenes_with_duplicates(
    path: Path, *, count: int, copies: int, seed: int = 0, size: int = 96
) -> DuplicateTruth:
    """A WebDataset tar of `count` scenes plus `copies` near-duplicates of randomly chosen ones.

    Each copy keeps its original's caption (as a re-crawled image usually does) and gets
    its own key; scale and quality vary per copy so no two copies are byte-identical.
    """
    rng = random.Random(f"curate-duplicates:{seed}")
    shard_id = path.name.split(".")[0]
    scenes = [render_scene(i, seed=seed, size=size) for i in range(count)]
    group = {f"{shard_id}/scene-{s.index:06d}": repr(plan_scene(s.index, seed=seed)) for s in scenes}
    samples = [Sample(key=k, image=s.image, text=s.caption) for k, s in zip(group, scenes)]
    copy_keys = []
    for number, original in enumerate(rng.sample(range(count), copies)):
        key = f"{shard_id}/copy-{number:06d}"
        image = near_duplicate(scenes[original].image, scale=rng.uniform(0.6, 1.6), quality=rng.randint(60, 92))
        samples.append(Sample(key=key, image=image, text=scenes[original].caption))
        group[key] = group[samples[original].key]
        copy_keys.append(key)
    rng.shuffle(samples)
    with WRITERS["webdataset"](path) as writer:
        for sample in samples:
            writer.write(sample)
    return DuplicateTruth(group=group, copies=copy_keys, shard=path)
