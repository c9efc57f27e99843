"""A run of rendered scenes embedded for real, and projections trained on it.

600 scenes whose captions describe them go into three WebDataset shards. Images are encoded
by a randomly initialised ResNet a little wider than the tiny one (512-d pooled features at
64 px: random convolutions still keep colours and layout, which is what the captions name);
captions by the packaged all-MiniLM-L6-v2 when installed, else by the tiny BERT. Matched
pairs are aligned by construction, so a projection that scores them above shuffled captions
has learnt something real.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest

from curate.models.builders import RESNET50_PREPROCESSOR, packaged_minilm
from curate.pipelines.embed import run_embed
from curate.pipelines.score import run_score
from curate.pipelines.train import run_train
from curate.schemas.config.flow import (
    EmbedConfig,
    EncoderConfig,
    ScoreConfig,
    TrainConfig,
)
from curate.synthetic.scenes import render_scene
from curate.synthetic.shards import write_scenes

SCENES, SHARDS = 600, 3
WIDE_RESNET = dict(embedding_size=64, hidden_sizes=[64, 128, 256, 512], depths=[1, 1, 1, 1])
# Few pairs, so small batches, a small shared space and a quarter held out for honest metrics; one
# projection (no out-of-fold ones): these fixtures are about the projection itself.
TEST_TRAINING = dict(epochs=60, batch_size=64, lr=3e-3, dim=128, val_fraction=0.25, device="cpu", folds=1)


@dataclass(frozen=True)
class SceneRun:
    """The shards, the run directory holding their embeddings, and the encoders used."""

    shards: Path
    run: Path
    encoders: EncoderConfig
    real_text: bool


@contextmanager
def one_thread() -> Iterator[None]:
    """Tiny matmuls gain nothing from threads, and on a busy 2-core CI box the threads'
    spin-waits made training ~20x slower; restored afterwards for the other tests."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def wide_random_resnet(folder: Path, *, seed: int = 0, crop: int = 64) -> Path:
    """A 4-stage ResNet with 512-d pooled output, saved like a hub model."""
    import torch
    from transformers import ConvNextImageProcessorPil, ResNetConfig, ResNetModel

    torch.manual_seed(seed)
    ResNetModel(ResNetConfig(**WIDE_RESNET)).save_pretrained(folder)
    ConvNextImageProcessorPil(**dict(RESNET50_PREPROCESSOR, size={"shortest_edge": crop})).save_pretrained(folder)
    return folder


def write_scene_shards(folder: Path) -> Path:
    per_shard = SCENES // SHARDS
    for shard in range(SHARDS):
        scenes = [render_scene(i, image_format="JPEG") for i in range(shard * per_shard, (shard + 1) * per_shard)]
        write_scenes(folder / f"{shard:05d}.tar", "webdataset", scenes)
    return folder


def make_scene_run(root: Path, tiny_text: Path) -> SceneRun:
    minilm = packaged_minilm()
    text_model = minilm if minilm is not None else tiny_text
    encoders = EncoderConfig(image_model=str(wide_random_resnet(root / "resnet")), text_model=str(text_model), device="cpu")
    shards = write_scene_shards(root / "shards")
    run = root / "run"
    with one_thread():
        run_embed(EmbedConfig(inputs=(shards,), out=run, encoders=encoders, batch_size=100, workers=0), quiet=True)
    return SceneRun(shards=shards, run=run, encoders=encoders, real_text=minilm is not None)


def train_projection(run: Path, out: Path, *, loss: str, **overrides: object) -> Path:
    settings = dict(TEST_TRAINING) | overrides
    with one_thread():
        run_train(TrainConfig(run_dir=run, out=out, loss=loss, **settings), quiet=True)  # type: ignore[arg-type]
    return out


@pytest.fixture(scope="session")
def scene_run(tmp_path_factory: pytest.TempPathFactory, tiny_models: tuple[Path, Path]) -> SceneRun:
    """600 rendered scenes in 3 shards, embedded (shared: tests copy it before changing anything)."""
    return make_scene_run(tmp_path_factory.mktemp("scene-run"), tiny_models[1])


@pytest.fixture(scope="session")
def projections(scene_run: SceneRun, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One projection per objective, trained on the scene run with the same settings and seed."""
    root = tmp_path_factory.mktemp("projections")
    return {loss: train_projection(scene_run.run, root / loss, loss=loss) for loss in ("contrastive", "cosine")}


@pytest.fixture(scope="session")
def scored_scene_run(scene_run: SceneRun, projections: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The scene run's embeddings scored by the contrastive projection into a run of its own."""
    out = tmp_path_factory.mktemp("scored-scenes") / "run"
    with one_thread():
        run_score(ScoreConfig(inputs=(scene_run.run,), projection=projections["contrastive"], out=out, device="cpu"),
                  quiet=True)
    return out


def tiny_projection(run: Path, out: Path) -> Path:
    """A small contrastive projection of `run`'s vectors, trained in seconds, for scoring tests."""
    run_train(TrainConfig(run_dir=run, out=out, dim=8, epochs=2, batch_size=8, val_fraction=0.25, device="cpu", folds=1),
              quiet=True)
    return out
