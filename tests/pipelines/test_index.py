"""`curate index`: kinds, measured recall, id map, reruns, atomic replacement."""

from __future__ import annotations

import json

import numpy as np
import pyarrow.parquet as pq
import pytest

from curate.errors import CurateError
from curate.index.store import BuiltIndex
from curate.io.embeddings import embeddings_files, iter_batches, vectors
from curate.models.projection import load_projection
from curate.pipelines import index as index_pipeline
from curate.pipelines.index import run_index
from curate.schemas.config.vectors import IndexConfig
from curate.synthetic.vectors import synthetic_encoders, synthetic_projection
from tests.pipelines.index_runs import (
    SYNTHETIC_DIM,
    SYNTHETIC_ROWS,
    IndexedRun,
    copy_run,
)


def projected_images(run, projection_dir) -> np.ndarray:
    """Every image vector of the run, projected, in id order (what the image index holds)."""
    projection, _ = load_projection(projection_dir)
    blocks = [projection.project_image(vectors(b.column(0)).astype(np.float32))
              for path in embeddings_files(run) for b in iter_batches(path, columns=["image_emb"])]
    return np.concatenate(blocks)


def fresh_recall(built: BuiltIndex, data: np.ndarray, *, queries: int = 400, seed: int = 7) -> float:
    """recall@10 on queries the build never tuned on, against numpy brute force."""
    rows = np.random.default_rng(seed).choice(len(data), size=queries, replace=False)
    truth = np.argsort(-(data[rows] @ data.T), axis=1)[:, :10]
    index, _ = built.load("image", device="cpu")
    _, found = index.search(data[rows], 10)
    return float(np.mean([len(np.intersect1d(f, t)) / 10 for f, t in zip(found, truth)]))


@pytest.mark.parametrize("kind", ["ivf-flat", "ivf-pq", "hnsw"])
def test_approximate_kinds_reach_the_recall_their_card_claims(kind, synthetic_run: IndexedRun, tmp_path):
    run = copy_run(synthetic_run.run, tmp_path / "run")
    card = run_index(IndexConfig(run_dir=run, projection=synthetic_run.projection, index_type=kind, device="cpu"),
                     quiet=True).card
    for side in ("image", "text"):
        entry = card.indexes[side]
        assert entry.kind == kind and entry.recall_at_10 >= 0.95 and entry.recall_queries == 1000
        assert set(entry.seconds) == {"train", "add", "tune", "write"}
    assert card.indexes["image"].search  # a tuned nprobe / efSearch, not the library default
    # The claim holds on queries it was not tuned on (within sampling error).
    assert fresh_recall(BuiltIndex.open(run), projected_images(run, synthetic_run.projection)) >= 0.93


def test_small_run_gets_an_exact_index_whose_ids_map_back_to_keys(synthetic_run: IndexedRun, tmp_path):
    run = copy_run(synthetic_run.run, tmp_path / "run")
    card = run_index(IndexConfig(run_dir=run, projection=synthetic_run.projection, device="cpu"), quiet=True).card
    assert (card.rows, card.dim, card.shards) == (SYNTHETIC_ROWS, SYNTHETIC_DIM, 3)
    assert card.indexes["image"].kind == "flat" and card.indexes["image"].recall_at_10 == 1.0
    built = BuiltIndex.open(run)
    ids = built.ids()
    assert ids.column("id").to_pylist() == list(range(SYNTHETIC_ROWS))
    keys = [k for p in embeddings_files(run) for k in pq.read_table(p, columns=["key"]).column("key").to_pylist()]
    assert ids.column("key").to_pylist() == keys
    data = projected_images(run, synthetic_run.projection)
    index, _ = built.load("image", device="cpu")
    sims, found = index.search(data[[5, 4321, 11999]], 1)
    assert found[:, 0].tolist() == [5, 4321, 11999] and np.allclose(sims[:, 0], 1.0, atol=1e-4)
    assert built.keys_of(np.array([4321]))[0] == [keys[4321]]


def test_rerun_skips_refuses_other_settings_and_overwrites(synthetic_run: IndexedRun, tmp_path):
    run = copy_run(synthetic_run.run, tmp_path / "run")
    config = IndexConfig(run_dir=run, projection=synthetic_run.projection, device="cpu")
    first = run_index(config, quiet=True)
    again = run_index(config, quiet=True)
    assert again.skipped and again.card == first.card
    other = IndexConfig(run_dir=run, projection=synthetic_run.projection, index_type="ivf-flat", device="cpu")
    with pytest.raises(CurateError, match="--overwrite"):
        run_index(other, quiet=True)
    rebuilt = run_index(IndexConfig(**{**other.__dict__, "overwrite": True}), quiet=True)
    assert not rebuilt.skipped and rebuilt.card.indexes["image"].kind == "ivf-flat"


def test_failed_build_leaves_the_previous_index_whole(synthetic_run: IndexedRun, tmp_path, monkeypatch):
    run = copy_run(synthetic_run.run, tmp_path / "run")
    run_index(IndexConfig(run_dir=run, projection=synthetic_run.projection, device="cpu"), quiet=True)
    before = json.loads((run / "index" / "card.json").read_text())

    def broken(*_args, **_kwargs):
        raise RuntimeError("killed mid-build")

    monkeypatch.setattr(index_pipeline, "build_side", broken)
    with pytest.raises(RuntimeError):
        run_index(IndexConfig(run_dir=run, projection=synthetic_run.projection, overwrite=True, device="cpu"), quiet=True)
    assert json.loads((run / "index" / "card.json").read_text()) == before
    assert sorted(p.name for p in run.iterdir()) == ["embeddings", "index"]  # no temporary folder left


def test_refuses_a_projection_trained_on_other_encoders(synthetic_run: IndexedRun, tmp_path):
    image, text = synthetic_encoders(SYNTHETIC_DIM, SYNTHETIC_DIM)
    other = synthetic_projection(tmp_path / "other", image=image, text=text.__class__(**{**text.__dict__, "model": "bert"}),
                                 dim=8)
    assert other.text_encoder.model == "bert"
    with pytest.raises(CurateError, match="trained on"):
        run_index(IndexConfig(run_dir=synthetic_run.run, projection=tmp_path / "other", device="cpu"), quiet=True)


def test_card_records_projection_budget_and_phases(synthetic_run: IndexedRun, tmp_path):
    run = copy_run(synthetic_run.run, tmp_path / "run")
    card = run_index(IndexConfig(run_dir=run, projection=synthetic_run.projection, max_index_memory="64MB",
                                 device="cpu"), quiet=True).card
    _, proj = load_projection(synthetic_run.projection)
    assert card.projection_fingerprint == proj.fingerprint and card.memory_budget == 64_000_000
    assert {"project", "image", "text", "total"} <= set(card.seconds)
    assert card.indexes["image"].file_bytes > SYNTHETIC_ROWS * SYNTHETIC_DIM * 4
