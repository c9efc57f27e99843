"""A captioner folder is self-contained, and every damaged file of it is named in one line (exit 2)."""

from __future__ import annotations

import csv
import io
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from curate.captioner.builders import build_shallow_resnet
from curate.captioner.card import CaptionerLayout, ImageSource
from curate.captioner.store import read_card
from curate.captioner.train import run_caption_train
from curate.cli.app import app
from tests.captioner.conftest import train_config
from tests.cli_checks import one_line_error, truncate

runner = CliRunner()


def _generate(model: Path, *inputs: Path) -> object:
    args = ["caption", "generate", str(model), *map(str, inputs), "--device", "cpu", "--workers", "0"]
    return runner.invoke(app, args)


@pytest.fixture()
def copied(trained, tmp_path: Path) -> Path:
    """A copy of the trained captioner's best checkpoint, free to damage."""
    out, _ = trained
    return Path(shutil.copytree(CaptionerLayout(out).best, tmp_path / "best"))


@pytest.mark.parametrize("damage", [
    "prefix.safetensors", "gpt2/model.safetensors", "gpt2/config.json", "tokenizer/tokenizer.json",
    "image/model.safetensors", "image/preprocessor_config.json", "card.json",
])
def test_a_truncated_checkpoint_file_is_named_in_one_line(copied: Path, subsets, damage: str) -> None:
    truncate(copied / damage)
    line = one_line_error(_generate(copied, subsets[1]), damage.split("/")[-1])
    assert "--image-model" not in line and "--decoder" not in line  # generate has no such options


def test_a_missing_image_tower_or_a_foreign_prefix_is_one_line(copied: Path, subsets, tmp_path: Path) -> None:
    shutil.rmtree(copied / "image")
    one_line_error(_generate(copied, subsets[1]), "image is missing")
    from safetensors.torch import save_file
    import torch

    shutil.copytree(tmp_path / "best", tmp_path / "other")
    save_file({"to_hidden.weight": torch.zeros(2, 2)}, str(tmp_path / "other" / "prefix.safetensors"))
    one_line_error(_generate(tmp_path / "other", subsets[1]), "prefix.safetensors does not fit")


def test_a_truncated_training_state_is_named_on_resume(subsets, caption_models, tmp_path: Path) -> None:
    out = tmp_path / "model"
    run_caption_train(train_config(subsets[0], out, caption_models, limit=40, epochs=1), quiet=True)
    truncate(out / "last" / "training_state.pt")
    result = runner.invoke(app, ["caption", "train", str(subsets[0]), "--out", str(out), "--resume", "--epochs", "2",
                                 "--decoder", str(caption_models[1]), "--image-model", str(caption_models[0]),
                                 "--limit", "40", "--batch-size", "16", "--device", "cpu", "--workers", "0"])
    one_line_error(result, "training_state.pt")


def test_a_model_folder_moved_elsewhere_still_loads(subsets, caption_models, scenes, tmp_path: Path) -> None:
    tower = build_shallow_resnet(tmp_path / "tower")  # a local tower that will be gone
    run_caption_train(train_config(subsets[0], tmp_path / "model", (tower, caption_models[1]), limit=40, epochs=1),
                      quiet=True)
    assert read_card(CaptionerLayout(tmp_path / "model").best).image_source == ImageSource.BUNDLED
    moved = Path(shutil.move(str(tmp_path / "model"), str(tmp_path / "elsewhere" / "captioner")))
    shutil.rmtree(tower)
    picture = tmp_path / "scene.png"
    picture.write_bytes(scenes[1][0].image)
    result = _generate(moved, picture)
    assert result.exit_code == 0, (result.output, result.exception)
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [r["key"] for r in rows] == [str(picture)] and rows[0]["prompt"] and not rows[0]["error"]
    resumed = run_caption_train(train_config(subsets[0], moved, (tower, caption_models[1]), limit=40, epochs=2,
                                             resume=True), quiet=True)  # the checkpoint's own tower
    assert resumed.resumed_from == 1 and [r.epoch for r in resumed.history] == [1, 2]


def test_good_and_missing_images_fail_before_any_output(trained, scenes, tmp_path: Path) -> None:
    out, _ = trained
    good = tmp_path / "good.png"
    good.write_bytes(scenes[1][0].image)
    result = _generate(out, good, tmp_path / "missing.png")
    one_line_error(result, "missing.png does not exist")
    assert result.stdout == ""  # not even the CSV header


def _subset(folder: Path, rows: list[dict]) -> Path:
    folder.mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(rows, schema=pa.schema([("key", pa.string()), ("image", pa.binary()),
                                                                 ("text", pa.string())])), folder / "part-0.parquet")
    return folder


@pytest.mark.parametrize("kind, says", [("undecodable", "undecodable"), ("uncaptioned", "no prompt")])
def test_a_subset_without_usable_pairs_says_why(kind: str, says: str, scenes, caption_models, tmp_path: Path) -> None:
    rows = [{"key": f"k{i}", "image": b"not a picture" if kind == "undecodable" else scenes[1][i].image,
             "text": "a large red circle" if kind == "undecodable" else ""} for i in range(12)]
    subset = _subset(tmp_path / "subset", rows)
    result = runner.invoke(app, ["caption", "train", str(subset), "--out", str(tmp_path / "m"), "--device", "cpu",
                                 "--decoder", str(caption_models[1]), "--image-model", str(caption_models[0]),
                                 "--workers", "0"])
    line = one_line_error(result, "No usable image-prompt pair", "12 samples left out", says)
    assert "--val-fraction" not in line
