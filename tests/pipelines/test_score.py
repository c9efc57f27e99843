"""`curate score`: exact similarities, the embeddings cache, resume rules and refusals."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from curate.errors import CurateError
from curate.io.embeddings import vectors
from curate.io.tables import ParquetTableWriter
from curate.models.projection import load_projection
from curate.pipelines.score import run_score
from curate.schemas.arrow_schemas import embeddings_schema
from curate.schemas.config.flow import ScoreConfig
from curate.schemas.layout import RunLayout
from curate.schemas.projection import CARD_FILE
from curate.schemas.tables import (
    EmbeddingsInfo,
    EncoderInfo,
    read_embeddings_info,
    read_scores_info,
)
from tests.pipelines.scene_runs import SceneRun, one_thread


def score(inputs: tuple[Path, ...], projection: Path, out: Path, **kwargs) -> object:
    return run_score(ScoreConfig(inputs=inputs, projection=projection, out=out, device="cpu", workers=0, **kwargs),
                     quiet=True)


def forbid_encoders(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any attempt to load an encoder fails the test."""
    def refuse(*_args, **_kwargs):
        raise AssertionError("an encoder was loaded")

    monkeypatch.setattr("curate.pipelines.embed.load_encoders", refuse)
    monkeypatch.setattr("curate.models.encoders.load_encoders", refuse)


def mtimes(folder: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in sorted(folder.glob("*.parquet"))}


def copy_embeddings(scene_run: SceneRun, out: Path, *, shards: int | None = None) -> Path:
    (out / "embeddings").mkdir(parents=True)
    for path in RunLayout(scene_run.run).shard_files("embeddings")[:shards]:
        shutil.copy2(path, out / "embeddings" / path.name)
    return out


def test_scores_equal_a_direct_computation(scored_scene_run: Path, scene_run: SceneRun, projections):
    model, card = load_projection(projections["contrastive"])
    emb_files = RunLayout(scene_run.run).shard_files("embeddings")
    assert [p.name for p in RunLayout(scored_scene_run).shard_files("scores")] == [p.name for p in emb_files]
    for emb_path in emb_files:
        emb, scores = pq.read_table(emb_path), pq.read_table(RunLayout(scored_scene_run).scores(emb_path.stem))
        assert scores.num_rows == emb.num_rows > 0
        assert scores.column("key").to_pylist() == emb.column("key").to_pylist()
        assert scores.column("url").to_pylist() == emb.column("url").to_pylist()  # meta kept
        assert {"image_emb", "text_emb"}.isdisjoint(scores.column_names)
        image = vectors(emb.column("image_emb")).astype(np.float32)
        text = vectors(emb.column("text_emb")).astype(np.float32)
        direct = np.einsum("nd,nd->n", model.project_image(image), model.project_text(text))
        assert scores.schema.field("similarity").type == "float"
        np.testing.assert_allclose(scores.column("similarity").to_numpy(), direct, atol=1e-6)
        info, source = read_scores_info(scores.schema), read_embeddings_info(emb.schema)
        assert (info.projection, info.source, info.format) == (card.fingerprint, source.source, source.format)
        assert info.projection_dir == str(projections["contrastive"].resolve())


def test_rescoring_with_another_projection_never_runs_encoders(scene_run: SceneRun, projections, tmp_path, monkeypatch):
    run = copy_embeddings(scene_run, tmp_path / "run")
    forbid_encoders(monkeypatch)
    before = mtimes(run / "embeddings")
    # Shard inputs whose embeddings exist, then a run-directory input: no encoder either time.
    score((scene_run.shards,), projections["contrastive"], run)
    first = mtimes(run / "scores")
    summary = score((run,), projections["cosine"], run)
    assert all(not s.skipped for s in summary.shards) and summary.rows == 600
    _, cosine = load_projection(projections["cosine"])
    for path in RunLayout(run).shard_files("scores"):
        assert read_scores_info(pq.read_schema(path)).projection == cosine.fingerprint
    rescored = mtimes(run / "scores")
    assert all(rescored[name] != first[name] for name in first)
    again = score((run,), projections["cosine"], run)
    assert all(s.skipped for s in again.shards) and mtimes(run / "scores") == rescored
    forced = score((run,), projections["cosine"], run, overwrite=True)
    assert forced.rows == 600 and all(mtimes(run / "scores")[name] != rescored[name] for name in rescored)
    assert mtimes(run / "embeddings") == before


def test_shard_inputs_embed_only_what_is_missing(scene_run: SceneRun, projections, tmp_path):
    run = copy_embeddings(scene_run, tmp_path / "run", shards=2)
    kept = mtimes(run / "embeddings")
    (run / "scores").mkdir()
    (run / "scores" / ".00000.parquet.999.tmp").write_bytes(b"left by a killed run")
    with one_thread():
        score((scene_run.shards,), projections["contrastive"], run)
    assert {k: v for k, v in mtimes(run / "embeddings").items() if k in kept} == kept
    made = RunLayout(run).embeddings("00002")
    # Embedded with the card's encoders: the same vectors as the original run's.
    original = pq.read_table(RunLayout(scene_run.run).embeddings("00002"))
    for column in ("image_emb", "text_emb"):
        np.testing.assert_allclose(vectors(pq.read_table(made).column(column)).astype(np.float32),
                                   vectors(original.column(column)).astype(np.float32), rtol=1e-2, atol=1e-3)
    assert len(RunLayout(run).shard_files("scores")) == 3
    assert not list((run / "scores").glob(".*.tmp"))


def write_foreign_embeddings(run: Path, *, image_dim: int, text_dim: int, text_model: str) -> Path:
    info = EmbeddingsInfo(
        shard_id="foreign", source="/nowhere", format="webdataset",
        image_encoder=EncoderInfo("some/resnet", image_dim, "image"),
        text_encoder=EncoderInfo(text_model, text_dim, "text", {"pooling": "mean", "max_tokens": 77}),
        versions={},
    )
    writer = ParquetTableWriter(RunLayout(run).embeddings("foreign"), embeddings_schema(info, pa.schema([])))
    rng = np.random.default_rng(0)
    writer.write_rows({
        "key": ["foreign/a", "foreign/b"], "text": ["x", "y"],
        "image_emb": pa.FixedSizeListArray.from_arrays(pa.array(rng.normal(size=2 * image_dim).astype(np.float16)), image_dim),
        "text_emb": pa.FixedSizeListArray.from_arrays(pa.array(rng.normal(size=2 * text_dim).astype(np.float16)), text_dim),
    })
    writer.close()
    return run


def test_refuses_other_encoders_and_other_dimensions(projections, tmp_path):
    _, card = load_projection(projections["contrastive"])
    dims = (card.image_encoder.dim, card.text_encoder.dim)
    same_dims = write_foreign_embeddings(tmp_path / "a", image_dim=dims[0], text_dim=dims[1], text_model="other/bert")
    with pytest.raises(CurateError) as refused:
        score((same_dims,), projections["contrastive"], tmp_path / "out")
    assert "some/resnet" in str(refused.value) and card.image_encoder.model in str(refused.value)
    other_dims = write_foreign_embeddings(tmp_path / "b", image_dim=16, text_dim=dims[1], text_model="x")
    with pytest.raises(CurateError, match=f"16-d image .* expects {dims[0]}-d"):
        score((other_dims,), projections["contrastive"], tmp_path / "out")
    assert not (tmp_path / "out" / "scores").exists()


def test_cli_refuses_projection_without_card_in_one_line(scene_run: SceneRun, tmp_path):
    (tmp_path / "proj").mkdir()
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    result = subprocess.run(
        [sys.executable, "-m", "curate.cli", "score", str(scene_run.run), "--projection", str(tmp_path / "proj"),
         "--out", str(tmp_path / "out")], capture_output=True, text=True, env=env, timeout=120,
    )
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert "Traceback" not in result.stderr
    assert len(lines) == 1 and lines[0].startswith("error:") and CARD_FILE in lines[0], result.stderr
