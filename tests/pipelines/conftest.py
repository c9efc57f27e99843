"""Fixtures for pipeline tests: tiny encoders and an encoder config that uses them."""

from __future__ import annotations

from pathlib import Path

import pytest

from curate.schemas.config.flow import EncoderConfig
from tests.pipelines.index_runs import (  # noqa: F401  (index, search, dedup)
    duplicate_photos,
    duplicate_scenes,
    scene_index,
    synthetic_run,
)
from tests.pipelines.joint_runs import clip_run, png_shards, siglip_run  # noqa: F401  (CLIP/SigLIP, native)
from tests.pipelines.scene_runs import projections, scene_run, scored_scene_run  # noqa: F401  (train/score/stats)
from tests.pipelines.scored_runs import scored_run  # noqa: F401  (a scored run for report and sql tests)
from tests.pipelines.swapped_runs import swapped_run  # noqa: F401  (10% wrong captions: false-match rate, explain)
from tests.tiny_models import tiny_image_model, tiny_text_model


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("tiny-models")
    return tiny_image_model(root / "image"), tiny_text_model(root / "text")


@pytest.fixture(scope="session")
def tiny_encoders(tiny_models: tuple[Path, Path]) -> EncoderConfig:
    image, text = tiny_models
    return EncoderConfig(image_model=str(image), text_model=str(text), device="cpu")
