"""A run scored with `--projection native` goes through every later step unchanged, and a
learned projection trains on CLIP features as on ResNet/BERT ones."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from curate.io.embeddings import vectors
from curate.pipelines.report import run_report
from curate.pipelines.score import run_score
from curate.pipelines.search import run_search
from curate.pipelines.stats import run_stats
from curate.pipelines.train import run_train
from curate.schemas.config.flow import ScoreConfig, StatsConfig, TrainConfig
from curate.schemas.config.review import ReportConfig
from curate.schemas.config.vectors import SearchConfig
from curate.schemas.layout import RunLayout
from curate.schemas.projection import CARD_FILE, MATCH_PROBABILITY, ProjectionCard
from tests.pipelines.joint_runs import PER_SHARD, SHARDS, JointRun, cli
from tests.pipelines.scene_runs import one_thread


def all_scores(run: Path, column: str = "similarity") -> np.ndarray:
    return np.concatenate([pq.read_table(p, columns=[column]).column(0).to_numpy()
                           for p in RunLayout(run).shard_files("scores")])


def unit(vector: np.ndarray) -> np.ndarray:
    vector = np.asarray(vector, dtype=np.float32)
    return vector / np.linalg.norm(vector)


def native_fingerprint(run: Path) -> str:
    return ProjectionCard.from_text((RunLayout(run).native_dir / CARD_FILE).read_text()).fingerprint


def test_stats_and_sql_read_a_native_run(clip_run: JointRun):
    stats = run_stats(StatsConfig(run_dir=clip_run.run))
    sims = all_scores(clip_run.run)
    assert stats.count == SHARDS * PER_SHARD == len(sims)
    assert stats.projections == (native_fingerprint(clip_run.run),)
    assert stats.mean == pytest.approx(float(sims.astype(np.float64).mean()), abs=1e-6)
    out = cli("sql", str(clip_run.run), "SELECT count(*) AS n FROM scores WHERE similarity >= 0", "--format", "json")
    assert json.loads(out)[0]["n"] == int((sims >= 0).sum())


def test_filter_keeps_the_pairs_at_or_above_min_sim(clip_run: JointRun, tmp_path):
    sims = all_scores(clip_run.run)
    threshold = float(np.median(sims))
    cli("filter", str(clip_run.run), "--min-sim", f"{threshold:.6f}", "--out", str(tmp_path / "cut"), "-q")
    manifest = json.loads((tmp_path / "cut" / "manifest.json").read_text())
    assert manifest["counts"]["kept"] == int((sims.astype(np.float64) >= float(f"{threshold:.6f}")).sum()) > 0
    assert manifest["projections"] == [native_fingerprint(clip_run.run)]
    assert manifest["projection_dirs"] == [str(RunLayout(clip_run.run).native_dir.resolve())]


def test_filter_can_select_on_the_siglip_match_probability(siglip_run: JointRun, tmp_path):
    probability = all_scores(siglip_run.run, MATCH_PROBABILITY)
    cut = float(f"{np.median(probability):.6f}")
    cli("filter", str(siglip_run.run), "--where", f"{MATCH_PROBABILITY} >= {cut}", "--out", str(tmp_path / "p"), "-q")
    manifest = json.loads((tmp_path / "p" / "manifest.json").read_text())
    assert manifest["counts"]["kept"] == int((probability.astype(np.float64) >= cut).sum())
    assert 0 < manifest["counts"]["kept"] < len(probability)


@pytest.fixture(scope="module")
def clip_index(clip_run: JointRun) -> Path:
    cli("index", str(clip_run.run), "--projection", "native", "--device", "cpu", "-q")
    return clip_run.run


def test_index_of_a_native_run_names_the_native_projection(clip_index: Path):
    card = json.loads((RunLayout(clip_index).index_dir / "card.json").read_text())
    assert card["projection_fingerprint"] == native_fingerprint(clip_index)
    assert card["dim"] == 16 and card["rows"] == SHARDS * PER_SHARD


def test_search_text_encodes_the_query_with_the_runs_text_tower(clip_index: Path):
    table = pq.read_table(RunLayout(clip_index).embeddings("00001"), columns=["key", "text", "text_emb"])
    caption, key = table.column("text")[5].as_py(), table.column("key")[5].as_py()
    with one_thread():
        hits = run_search(SearchConfig(run_dir=clip_index, text=caption, target="text", k=3, device="cpu")).hits
    assert hits[0].text == caption and hits[0].similarity > 0.999  # the very vector `embed` stored for it
    assert key in {h.key for h in hits if h.text == caption}
    with one_thread():
        images = run_search(SearchConfig(run_dir=clip_index, text=caption, k=4, device="cpu")).hits
    query = unit(vectors(table.column("text_emb"))[5])
    image_of = {k: unit(v) for run in RunLayout(clip_index).shard_files("embeddings")
                for k, v in zip(pq.read_table(run, columns=["key"]).column(0).to_pylist(),
                                vectors(pq.read_table(run, columns=["image_emb"]).column(0)))}
    assert len(images) == 4
    for hit in images:  # cross-modal hits are ranked by the native cosine of the query and each image
        assert hit.similarity == pytest.approx(float(query @ image_of[hit.key]), abs=1e-3)
    assert [h.similarity for h in images] == sorted((h.similarity for h in images), reverse=True)


def test_dedup_and_report_run_on_a_native_run(clip_index: Path, tmp_path):
    cli("dedup", str(clip_index), "--device", "cpu", "-q")
    assert (RunLayout(clip_index).dedup_dir / "dedup.parquet").is_file()
    with one_thread():
        run_report(ReportConfig(run_dir=clip_index, out=tmp_path / "report.html", thumbnails=4, sample=48))
    page = (tmp_path / "report.html").read_text()
    assert native_fingerprint(clip_index) in page  # the projection table and the card
    assert "projected (native, 16-d)" in page  # the map is drawn in the model's own joint space


def test_a_learned_projection_trains_on_clip_embeddings(clip_run: JointRun, tmp_path):
    with one_thread():
        result = run_train(TrainConfig(run_dir=clip_run.run, out=tmp_path / "proj", dim=8, epochs=5, batch_size=16,
                                       val_fraction=0.25, device="cpu"), quiet=True)
    card = result.card
    assert card.loss == "contrastive" and card.out_dim == 8
    assert card.image_encoder.model == card.text_encoder.model == str(clip_run.model)
    assert (card.image_encoder.dim, card.text_encoder.dim) == (16, 16)
    assert card.data is not None and card.data.train_pairs + card.data.val_pairs == SHARDS * PER_SHARD
    with one_thread():  # shards not embedded yet are embedded with the card's CLIP towers, then projected
        run_score(ScoreConfig(inputs=(clip_run.shards,), projection=tmp_path / "proj", out=tmp_path / "new",
                              device="cpu", workers=0), quiet=True)
    fresh = pq.read_table(RunLayout(tmp_path / "new").embeddings("00000"), columns=["image_emb", "text_emb"])
    first = pq.read_table(RunLayout(clip_run.run).embeddings("00000"), columns=["image_emb", "text_emb"])
    np.testing.assert_array_equal(vectors(fresh.column("text_emb")), vectors(first.column("text_emb")))
    learned = all_scores(tmp_path / "new")
    assert len(learned) == SHARDS * PER_SHARD and not np.allclose(learned, all_scores(clip_run.run), atol=1e-3)
