"""Small shards of rendered scenes in every input format, written through the real writers.

Tests, demos and benchmarks use these instead of downloaded data: each format gets its own
scenes (distinct keys) with the meta its real-world source would carry, and
`write_same_scenes` writes identical image bytes into every format so a test can check
that one image gives one vector whichever format it came in.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable

import pyarrow as pa
import pyarrow.parquet as pq

from curate.io.formats import diffusiondb, webdataset
from curate.io.formats.base import lookup
from curate.io.formats.registry import WRITERS
from curate.schemas.sample import Sample
from curate.synthetic.scenes import Scene, render_scene

MetaFn = Callable[[Scene], dict[str, Any]]
_EPOCH = datetime(2022, 8, 1, tzinfo=timezone.utc)


def _diffusiondb_meta(scene: Scene) -> dict[str, Any]:
    return {"seed": 1000 + scene.index, "cfg": 7.0, "step": 50, "sampler": "k_lms"}


def _web_meta(scene: Scene) -> dict[str, Any]:
    return {
        "url": f"https://example.invalid/scenes/{scene.index}.{scene.extension}",
        "width": scene.width,
        "height": scene.height,
        "original_width": scene.width * 4,
        "original_height": scene.height * 4,
        "sha256": hashlib.sha256(scene.image).hexdigest(),
    }


def _parquet_meta(scene: Scene) -> dict[str, Any]:
    web = _web_meta(scene)
    return {key: web[key] for key in ("url", "width", "height")} | {"scene_index": scene.index}


def _folder_meta(scene: Scene) -> dict[str, Any]:
    return {"background": scene.background, "shapes": " ".join(o.shape for o in scene.objects)}


def member_name(index: int) -> str:
    """The member every format's writer is given for scene `index` (no dots: tar-safe)."""
    return f"scene-{index:06d}"


def write_sample_shards(out_dir: Path, *, per_shard: int = 24, seed: int = 0) -> list[Path]:
    """One shard of each format under `out_dir`, each with its own `per_shard` scenes."""
    paths = []
    for number, fmt in enumerate(sorted(PLANS)):
        plan = PLANS[fmt]
        indices = range(number * per_shard, (number + 1) * per_shard)
        scenes = [render_scene(i, seed=seed, image_format=plan.image_format) for i in indices]
        paths.append(write_scenes(out_dir / plan.path.format(n=1), fmt, scenes))
    return paths


def write_same_scenes(
    out_dir: Path, *, count: int = 8, seed: int = 0, image_format: str = "PNG"
) -> dict[str, Path]:
    """The same `count` scenes, byte-identical images, as one shard of every format."""
    scenes = [render_scene(i, seed=seed, image_format=image_format) for i in range(count)]
    return {
        fmt: write_scenes(out_dir / plan.path.format(n=2), fmt, scenes)
        for fmt, plan in sorted(PLANS.items())
    }


def write_scenes(path: Path, fmt: str, scenes: list[Scene]) -> Path:
    """Write `scenes` as one `fmt` shard at `path` through the registered writer."""
    plan = PLANS[fmt]
    writer_cls = lookup(WRITERS, fmt, "format")
    with writer_cls(path, meta_schema=plan.meta_schema) as writer:
        for scene in scenes:
            key = f"{path.name.split('.')[0]}/{member_name(scene.index)}"
            sample = Sample(key=key, image=scene.image, text=scene.caption, meta=plan.meta(scene))
            writer.write(sample)
    if plan.after is not None:
        plan.after(path, scenes)
    return path


def write_diffusiondb_metadata(part: Path, scenes: list[Scene]) -> Path:
    """`metadata.parquet` beside the part, with DiffusionDB's columns for its images.

    Rows of other parts already in the file are kept, as in DiffusionDB's single table.
    """
    part_id = int(part.name.split(".")[0].rsplit("-", 1)[-1])
    target = part.parent / diffusiondb.METADATA_FILE
    kept = []
    if target.exists():
        kept = [r for r in pq.read_table(target).to_pylist() if r["part_id"] != part_id]
    rows = kept + [_metadata_row(scene, part_id) for scene in scenes]
    return diffusiondb.write_metadata_parquet(target, rows)


def _metadata_row(scene: Scene, part_id: int) -> dict[str, Any]:
    return {
        "image_name": f"{member_name(scene.index)}.{scene.extension}",
        "prompt": scene.caption,
        "part_id": part_id,
        "width": scene.width,
        "height": scene.height,
        "user_name": "scene-renderer",
        "timestamp": _EPOCH + timedelta(minutes=scene.index),
        "image_nsfw": 0.0,
        "prompt_nsfw": 0.0,
        **_diffusiondb_meta(scene),
    }


@dataclass(frozen=True)
class FormatPlan:
    """How sample scenes are written in one format: where, encoded how, with what meta."""

    path: str  # relative to the output folder, `{n}` filled with the shard number
    image_format: str
    meta: MetaFn
    meta_schema: pa.Schema
    after: Callable[[Path, list[Scene]], Any] | None = None  # side files (metadata.parquet)


PLANS: dict[str, FormatPlan] = {
    "diffusiondb": FormatPlan(
        "diffusiondb/part-{n:06d}.zip", "PNG", _diffusiondb_meta,
        pa.schema([(name, type_) for name, (_, type_) in diffusiondb.JSON_FIELDS.items()]),
        after=write_diffusiondb_metadata,
    ),
    "webdataset": FormatPlan("webdataset/{n:05d}.tar", "JPEG", _web_meta, webdataset.META_SCHEMA),
    "parquet": FormatPlan(
        "parquet/scenes-{n:05d}.parquet", "JPEG", _parquet_meta,
        pa.schema([("url", pa.string()), ("width", pa.int64()), ("height", pa.int64()),
                   ("scene_index", pa.int64())]),
    ),
    "imagefolder": FormatPlan(
        "imagefolder/scenes-folder-{n:05d}", "PNG", _folder_meta,
        pa.schema([("background", pa.string()), ("shapes", pa.string())]),
    ),
}
