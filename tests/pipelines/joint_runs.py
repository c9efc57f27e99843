"""Runs embedded by tiny CLIP and SigLIP checkpoints through the command line, then scored
with `--projection native`: the commands of a user who reproduces a CLIP-score cut.

The checkpoints are built from configs with their own small tokenizers and saved like hub
models, so they load through the same door a hub id takes. Scenes are PNGs (decoded whole,
as an image processor decodes them), in two WebDataset shards.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from curate.cli.app import app
from curate.synthetic.scenes import render_scene
from curate.synthetic.shards import write_scenes
from tests.pipelines.scene_runs import one_thread
from tests.tiny_models import tiny_clip_model, tiny_siglip_model

PER_SHARD, SHARDS = 24, 2


@dataclass(frozen=True)
class JointRun:
    """A run embedded with `--model CHECKPOINT` and scored with `--projection native`."""

    model: Path
    shards: Path
    run: Path


def cli(*args: str) -> str:
    """Run `curate ARGS` in this process; fails the test with the output when it fails."""
    with one_thread():
        result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def write_png_shards(folder: Path) -> Path:
    for shard in range(SHARDS):
        scenes = [render_scene(i, image_format="PNG") for i in range(shard * PER_SHARD, (shard + 1) * PER_SHARD)]
        write_scenes(folder / f"{shard:05d}.tar", "webdataset", scenes)
    return folder


def make_joint_run(root: Path, model: Path, shards: Path) -> JointRun:
    run = root / "run"
    cli("embed", str(shards), "--out", str(run), "--model", str(model), "--device", "cpu", "--workers", "0",
        "--batch-size", "16", "-q")
    cli("score", str(run), "--projection", "native", "--out", str(run), "--device", "cpu", "-q")
    return JointRun(model=model, shards=shards, run=run)


@pytest.fixture(scope="session")
def png_shards(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_png_shards(tmp_path_factory.mktemp("png-shards"))


@pytest.fixture(scope="session")
def clip_run(tmp_path_factory: pytest.TempPathFactory, png_shards: Path) -> JointRun:
    root = tmp_path_factory.mktemp("clip-run")
    return make_joint_run(root, tiny_clip_model(root / "clip"), png_shards)


@pytest.fixture(scope="session")
def siglip_run(tmp_path_factory: pytest.TempPathFactory, png_shards: Path) -> JointRun:
    root = tmp_path_factory.mktemp("siglip-run")
    return make_joint_run(root, tiny_siglip_model(root / "siglip"), png_shards)
