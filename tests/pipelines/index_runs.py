"""Runs for the index, search and dedup tests.

* `synthetic_run`: 12k clustered pairs (32-d) written through the real embeddings writer and a
  random projection: enough rows for IVF lists and PQ codebooks, small enough to build fast.
* `scene_index`: the scored scene run (real random-ResNet + MiniLM embeddings, a trained
  contrastive projection, real scores) with its index.
* `duplicate_runs`: rendered scenes, and the real photographs of ../shared/data/coco300 when
  present, each with 40 resized, re-encoded copies injected. Their image vectors are RGB
  thumbnails (`curate.synthetic.vectors.thumbnail_vectors`), standing in for a pretrained image
  encoder: randomly initialised CNNs move more under JPEG re-encoding than between two
  different pictures (docs/index.md has the measurements), so they cannot test dedup.
  Captions go through MiniLM (or the tiny BERT) and a projection is trained for real.
"""

from __future__ import annotations

import csv
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from curate.index.store import BuiltIndex
from curate.models.builders import packaged_minilm
from curate.pipelines.index import run_index
from curate.schemas.config.vectors import IndexConfig
from curate.schemas.tables import EncoderInfo
from curate.synthetic.duplicates import DuplicateTruth, write_scenes_with_duplicates
from curate.synthetic.vectors import (
    synthetic_encoders,
    synthetic_projection,
    thumbnail_vectors,
    write_embeddings,
    write_synthetic_run,
)
from tests.pipelines.scene_runs import SceneRun, one_thread, train_projection

SYNTHETIC_ROWS, SYNTHETIC_DIM = 12_000, 32
COCO = Path(__file__).resolve().parents[3] / "shared" / "data" / "coco300"
COPIES = 40
THUMBNAIL_SIDE = 16


@dataclass(frozen=True)
class IndexedRun:
    run: Path
    projection: Path


@pytest.fixture(scope="session")
def synthetic_run(tmp_path_factory: pytest.TempPathFactory) -> IndexedRun:
    """Clustered vectors in 3 shards plus a random projection (nothing indexed yet: tests copy it)."""
    root = tmp_path_factory.mktemp("synthetic")
    write_synthetic_run(root / "run", rows=SYNTHETIC_ROWS, dim=SYNTHETIC_DIM, shards=3, clusters=150, seed=0)
    image, text = synthetic_encoders(SYNTHETIC_DIM, SYNTHETIC_DIM)
    synthetic_projection(root / "projection", image=image, text=text, dim=SYNTHETIC_DIM)
    return IndexedRun(root / "run", root / "projection")


def copy_run(run: Path, target: Path) -> Path:
    """A private copy of a run's embeddings (and scores), so a test can index or change it freely."""
    for table in ("embeddings", "scores"):
        if (run / table).is_dir():
            shutil.copytree(run / table, target / table, dirs_exist_ok=True)
    return target


@pytest.fixture(scope="session")
def scene_index(scene_run: SceneRun, scored_scene_run: Path, projections: dict[str, Path],
                tmp_path_factory: pytest.TempPathFactory) -> BuiltIndex:
    """The scene run's embeddings and scores in one run directory, indexed with the projection that scored them."""
    run = copy_run(scored_scene_run, copy_run(scene_run.run, tmp_path_factory.mktemp("scene-index") / "run"))
    with one_thread():
        run_index(IndexConfig(run_dir=run, projection=projections["contrastive"], device="cpu"), quiet=True)
    return BuiltIndex.open(run)


@dataclass(frozen=True)
class DuplicateRun:
    """An indexed run with injected near-duplicates, and which keys truly show one picture."""

    run: Path
    truth: DuplicateTruth


def caption_vectors(captions: list[str], tiny_text: Path) -> tuple[np.ndarray, EncoderInfo]:
    import torch

    from curate.models.text_encoder import TextEncoder

    encoder = TextEncoder(str(packaged_minilm() or tiny_text), device=torch.device("cpu"))
    with one_thread():
        return encoder.encode(captions), encoder.info


def thumbnail_run(root: Path, images: dict[str, bytes], captions: dict[str, str], tiny_text: Path) -> Path:
    """Embeddings (thumbnail images, encoded captions), a trained projection, and the index."""
    keys = sorted(images)
    text, text_info = caption_vectors([captions[k] for k in keys], tiny_text)
    image = thumbnail_vectors([images[k] for k in keys], side=THUMBNAIL_SIDE)
    image_info = EncoderInfo(model=f"thumbnail-{THUMBNAIL_SIDE}", dim=image.shape[1], kind="image")
    write_embeddings(root / "run" / "embeddings" / "00000.parquet", keys=keys, texts=[captions[k] for k in keys],
                     image=image, text=text, encoders=(image_info, text_info))
    projection = train_projection(root / "run", root / "projection", loss="contrastive", val_fraction=0.1)
    with one_thread():
        run_index(IndexConfig(run_dir=root / "run", projection=projection, device="cpu"), quiet=True)
    return root / "run"


def read_shard(truth: DuplicateTruth) -> tuple[dict[str, bytes], dict[str, str]]:
    """Images and captions of the duplicate shard, read back through the WebDataset reader."""
    from curate.io.formats.base import Shard
    from curate.io.formats.registry import READERS
    images, captions = {}, {}
    for sample in READERS["webdataset"](Shard(path=truth.shard, format="webdataset", shard_id="00000")):
        images[sample.key], captions[sample.key] = sample.image, sample.text
    return images, captions


@pytest.fixture(scope="session")
def duplicate_scenes(tmp_path_factory: pytest.TempPathFactory, tiny_models: tuple[Path, Path]) -> DuplicateRun:
    root = tmp_path_factory.mktemp("duplicate-scenes")
    truth = write_scenes_with_duplicates(root / "00000.tar", count=300, copies=COPIES)
    return DuplicateRun(thumbnail_run(root, *read_shard(truth), tiny_models[1]), truth)


@pytest.fixture(scope="session")
def duplicate_photos(tmp_path_factory: pytest.TempPathFactory, tiny_models: tuple[Path, Path]) -> DuplicateRun:
    if not (COCO / "captions.csv").is_file():
        pytest.skip(f"{COCO} is absent (real photos are only on the project's machines)")
    from curate.synthetic.duplicates import inject_copies

    with open(COCO / "captions.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    originals = {Path(r["file_name"]).stem: ((COCO / "images" / r["file_name"]).read_bytes(), r["caption"])
                 for r in rows}
    root = tmp_path_factory.mktemp("duplicate-photos")
    truth = inject_copies(root / "00000.tar", originals, copies=COPIES)
    return DuplicateRun(thumbnail_run(root, *read_shard(truth), tiny_models[1]), truth)
