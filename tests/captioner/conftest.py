"""Fixtures for the captioner: tiny towers, rendered-scene subsets, one training run per session.

Torch runs single-threaded: the tiny models gain nothing from threads, and on a busy
machine thread contention costs far more than it saves.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from curate.captioner.builders import build_gpt2, build_shallow_resnet
from curate.captioner.config import CaptionTrainConfig
from curate.captioner.train import CaptionTrainSummary, run_caption_train
from curate.synthetic.caption_scenes import single_object_scenes, write_subset
from curate.synthetic.scenes import Scene
from tests.captioner.scenes_subset import CAPTION_WORDS

TRAIN_SCENES = 600
HELD_OUT_SCENES = 60


@pytest.fixture(scope="session", autouse=True)
def single_thread() -> None:
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def caption_models(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(image tower dir, decoder dir): a tiny ResNet and a 2-layer, 64-wide GPT-2 without dropout."""
    root = tmp_path_factory.mktemp("caption-models")
    return build_shallow_resnet(root / "image"), build_gpt2(root / "gpt2", words=CAPTION_WORDS, dropout=0.0)


@pytest.fixture(scope="session")
def scenes() -> tuple[list[Scene], list[Scene]]:
    """(training scenes, held-out scenes): disjoint scene indices."""
    found = single_object_scenes(TRAIN_SCENES + HELD_OUT_SCENES)
    return found[:TRAIN_SCENES], found[TRAIN_SCENES:]


@pytest.fixture(scope="session")
def subsets(tmp_path_factory: pytest.TempPathFactory, scenes: tuple[list[Scene], list[Scene]]) -> tuple[Path, Path]:
    """(training subset as Parquet shards, held-out subset as WebDataset tars)."""
    root = tmp_path_factory.mktemp("caption-subsets")
    train, held_out = scenes
    return write_subset(root / "train", train), write_subset(root / "heldout", held_out, fmt="webdataset")


def train_config(subset: Path, out: Path, models: tuple[Path, Path], **overrides: object) -> CaptionTrainConfig:
    """Settings that learn the scenes in a few seconds on one CPU thread."""
    image, decoder = models
    settings = dict(subset=subset, out=out, decoder=str(decoder), image_model=str(image), epochs=12, batch_size=16,
                    lr=2e-3, device="cpu", workers=0)
    return CaptionTrainConfig(**{**settings, **overrides})  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def trained(
    tmp_path_factory: pytest.TempPathFactory, subsets: tuple[Path, Path], caption_models: tuple[Path, Path]
) -> tuple[Path, CaptionTrainSummary]:
    """The captioner trained once on the training subset: (its folder, the run's summary)."""
    out = tmp_path_factory.mktemp("captioner") / "model"
    return out, run_caption_train(train_config(subsets[0], out, caption_models), quiet=True)
