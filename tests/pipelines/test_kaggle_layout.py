"""Kaggle's image-to-prompt layout end to end through the command line: embed, train, score, filter.

`data/prompts.csv` (`imgId,prompt`) with the pictures in `data/images/<imgId>.png`, the layout
the published ResNet-50 + BERT method documents, used to give 0 embedded (every row
`missing_image`).
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from curate.cli.app import app
from curate.io.formats.detect import find_shards, reader_for
from curate.synthetic.scenes import render_scene
from tests.pipelines.scene_runs import one_thread

PICTURES = 24


@pytest.fixture
def kaggle_data(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    (data / "images").mkdir(parents=True)
    lines = ["imgId,prompt"]
    for i in range(PICTURES):
        scene = render_scene(i, size=48)
        (data / "images" / f"{i:08x}.png").write_bytes(scene.image)
        lines.append(f'{i:08x},"{scene.caption}"')
    lines.append("ffffffff,a picture nobody saved")
    (data / "prompts.csv").write_text("\n".join(lines) + "\n")
    return data


def invoke(*args: str) -> str:
    result = CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_kaggle_layout_embeds_trains_scores_and_filters(kaggle_data, tiny_models, tmp_path):
    run, projection, subset = tmp_path / "run", tmp_path / "projection", tmp_path / "subset"
    models = ["--image-model", tiny_models[0], "--text-model", tiny_models[1], "--device", "cpu"]
    with one_thread():
        invoke("embed", kaggle_data, "--out", run, *models, "--workers", "0", "--batch-size", "8")
        invoke("train", run, "--out", projection, "--dim", "8", "--epochs", "2", "--batch-size", "8",
               "--val-fraction", "0.25", "--device", "cpu")
        invoke("score", run, "--projection", projection, "--out", run, "--device", "cpu")
        invoke("filter", run, "--out", subset, "--top-fraction", "0.5", "--format", "imagefolder")

    assert pq.read_table(run / "embeddings").num_rows == PICTURES
    errors = pq.read_table(run / "errors").to_pylist()
    assert [(e["key"], e["error"]) for e in errors] == [("data/ffffffff", "missing_image")]  # in = out + errors
    scores = duckdb.sql(f"SELECT key, text FROM '{run}/scores/*.parquet'").fetchall()
    assert len(scores) == PICTURES
    kept = [r for s in find_shards([subset]) for r in reader_for(s)]
    assert len(kept) == PICTURES // 2
    for sample in kept:
        source = sample.meta["source_key"]  # data/images/<imgId>.png
        assert sample.image == (kaggle_data.parent / source).read_bytes()
        assert sample.text == render_scene(int(Path(source).stem, 16)).caption


def test_column_options_are_on_embed_and_score_and_refuse_blanks(kaggle_data, tmp_path):
    for command in ("embed", "score"):
        help_text = CliRunner().invoke(app, [command, "--help"]).output
        assert all(flag in help_text for flag in ("--image-column", "--text-column", "--key-column"))
    result = CliRunner().invoke(app, ["embed", str(kaggle_data), "--out", str(tmp_path / "r"), "--text-column", " "])
    assert result.exit_code == 2 and "--text-column is empty" in result.output
