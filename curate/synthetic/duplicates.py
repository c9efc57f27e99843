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

from curate.io.formats.registry import WRITERS
from curate.schemas.sample import Sample
from curate.synthetic.scenes import plan_scene, render_scene


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


def inject_copies(path: Path, originals: dict[str, tuple[bytes, str]], *, copies: int, seed: int = 0,
                  group: dict[str, str] | None = None) -> DuplicateTruth:
    """A WebDataset tar of `originals` (member -> (image, caption)) plus `copies` near-duplicates.

    Each copy keeps its original's caption (as a re-crawled image usually does) and gets its
    own key; scale (0.6-1.6x) and JPEG quality (60-92) vary per copy. `group` names which
    originals show one picture (default: each its own); keys are `<shard-id>/<member>` as
    the reader will yield them.
    """
    rng = random.Random(f"curate-duplicates:{seed}")
    shard_id = path.name.split(".")[0]
    members = list(originals)
    truth = {f"{shard_id}/{m}": (group or {}).get(m, m) for m in members}
    samples = [Sample(key=f"{shard_id}/{m}", image=originals[m][0], text=originals[m][1]) for m in members]
    copy_keys = []
    for number, member in enumerate(rng.sample(members, copies)):
        key = f"{shard_id}/copy-{number:06d}"
        image = near_duplicate(originals[member][0], scale=rng.uniform(0.6, 1.6), quality=rng.randint(60, 92))
        samples.append(Sample(key=key, image=image, text=originals[member][1]))
        truth[key] = truth[f"{shard_id}/{member}"]
        copy_keys.append(key)
    rng.shuffle(samples)
    with WRITERS["webdataset"](path) as writer:
        for sample in samples:
            writer.write(sample)
    return DuplicateTruth(group=truth, copies=copy_keys, shard=path)


def write_scenes_with_duplicates(path: Path, *, count: int, copies: int, seed: int = 0, size: int = 96) -> DuplicateTruth:
    """`count` rendered scenes plus `copies` near-duplicates; scenes planned identically are one picture."""
    scenes = [render_scene(i, seed=seed, size=size) for i in range(count)]
    originals = {f"scene-{s.index:06d}": (s.image, s.caption) for s in scenes}
    group = {f"scene-{s.index:06d}": repr(plan_scene(s.index, seed=seed)) for s in scenes}
    return inject_copies(path, originals, copies=copies, seed=seed, group=group)
