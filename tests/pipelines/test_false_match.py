"""The calibrated false-match rate: one threshold that means the same for every projection.

On 1000 rendered scenes where a known 10% of captions belong to other scenes, `--max-false-match
0.05` must remove about 95% of the wrong pairs under a contrastive and under a cosine
projection (scored out of fold, the default), the wrong pairs' rates must be close to
uniform, and a projection scoring pairs it was trained on must visibly fail both.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from curate.models.folds import fold_of
from curate.models.projection import read_card
from curate.pipelines.filter import run_filter
from curate.pipelines.null import sample_pairs
from curate.pipelines.score import run_score
from curate.schemas.config.flow import FilterConfig, ScoreConfig
from curate.schemas.layout import RunLayout
from curate.schemas.manifest import read_manifest
from curate.schemas.tables import Table, read_scores_info
from tests.pipelines.scene_runs import one_thread
from tests.pipelines.swapped_runs import SwappedRun


def scores_of(run: Path) -> pa.Table:
    return pa.concat_tables([pq.read_table(f) for f in RunLayout(run).shard_files(Table.SCORES)])


def rates(run: Path) -> dict[str, float]:
    table = scores_of(run)
    return dict(zip(table.column("key").to_pylist(), table.column("false_match_rate").to_pylist()))


def ks_distance(values: list[float]) -> float:
    """Kolmogorov-Smirnov distance between the values' empirical CDF and the uniform one on [0, 1]."""
    x = np.sort(np.asarray(values))
    n = len(x)
    return float(max((np.arange(1, n + 1) / n - x).max(), (x - np.arange(n) / n).max()))


def kept_keys(subset: Path) -> set[str]:
    return {k for f in sorted(subset.glob("*.parquet")) for k in pq.read_table(f, columns=["source_key"]).column(0).to_pylist()}


@pytest.mark.parametrize("name", ["contrastive", "cosine"])
def test_max_false_match_005_removes_about_95_percent_of_wrong_captions(swapped_run: SwappedRun, name, tmp_path):
    summary = run_filter(FilterConfig(run_dir=swapped_run.runs[name], out=tmp_path / "subset", max_false_match=0.05),
                         quiet=True)
    kept, swapped = kept_keys(tmp_path / "subset"), swapped_run.scenes.swapped
    true_pairs = set(swapped_run.scenes.true_captions) - swapped
    removed = 1 - len(kept & swapped) / len(swapped)
    assert 0.88 <= removed <= 0.99, (name, removed)  # one threshold, two scales: calibrated
    if name == "contrastive":  # power: how many true pairs the objective keeps at that threshold
        assert len(kept & true_pairs) / len(true_pairs) >= 0.80
    counts = read_manifest(tmp_path / "subset").counts
    assert counts.kept == len(kept) == summary.manifest.counts.kept
    assert counts.dropped_by_reason == {"above_max_false_match": 1000 - len(kept)}
    by_rate = {k for k, r in rates(swapped_run.runs[name]).items() if r <= 0.05}
    assert by_rate == kept


@pytest.mark.parametrize("name", ["contrastive", "cosine"])
def test_wrong_captions_have_close_to_uniform_rates(swapped_run: SwappedRun, name):
    found = rates(swapped_run.runs[name])
    wrong = [found[k] for k in swapped_run.scenes.swapped]
    assert ks_distance(wrong) < 1.63 / np.sqrt(len(wrong)), sorted(wrong)  # KS test at the 1% level


def test_a_projection_that_saw_the_wrong_captions_cannot_tell_them(swapped_run: SwappedRun):
    """Without folds, every wrong caption was a training positive: it scores like a true pair."""
    single, oof = rates(swapped_run.runs["single"]), rates(swapped_run.runs["contrastive"])
    swapped = swapped_run.scenes.swapped
    removed = {name: np.mean([found[k] > 0.05 for k in swapped]) for name, found in (("single", single), ("oof", oof))}
    assert removed["single"] < removed["oof"] - 0.3, removed
    assert ks_distance([single[k] for k in swapped]) > 0.3  # far from uniform: the rates lie


def test_null_is_drawn_within_folds_with_its_seed_and_size_recorded(swapped_run: SwappedRun):
    run = swapped_run.runs["contrastive"]
    infos = [read_scores_info(pq.read_schema(f)) for f in RunLayout(run).shard_files(Table.SCORES)]
    null = infos[0].null
    assert all(i.null == null for i in infos) and null.seed == 0 and null.size == 10_000 and null.folds == 5
    table = pq.read_table(RunLayout(run).null(null.projection))
    assert table.num_rows == null.pairs >= 10_000 and null.images == 1000  # a small run: every pair's image, 10 captions each
    images, texts = table.column("image_key").to_pylist(), table.column("text_key").to_pylist()
    assert all(i != t for i, t in zip(images, texts))
    assert (fold_of(images, 5) == table.column("fold").to_numpy()).all()
    assert (fold_of(texts, 5) == table.column("fold").to_numpy()).all()
    assert len(set(zip(images, texts))) == len(images)  # no mismatched pair twice


def test_the_sample_depends_on_keys_and_seed_not_on_file_order(swapped_run: SwappedRun):
    files = RunLayout(swapped_run.embedded).shard_files(Table.EMBEDDINGS)
    forward = sample_pairs(files, size=50, seed=0)
    backward = sample_pairs(files[::-1], size=50, seed=0)
    assert forward.keys.tolist() == backward.keys.tolist()
    assert len({k.split("/")[0] for k in forward.keys}) == len(files)  # drawn across shards
    assert set(sample_pairs(files, size=50, seed=1).keys) != set(forward.keys)


def test_rerun_skips_overwrite_rewrites_the_same_bytes_new_projection_draws_anew(swapped_run: SwappedRun, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(swapped_run.runs["contrastive"], run)
    layout = RunLayout(run)
    before = {p: p.read_bytes() for p in [*layout.shard_files(Table.SCORES), *layout.null_dir.glob("*.parquet")]}
    stamps = {p: p.stat().st_mtime_ns for p in before}
    with one_thread():
        config = ScoreConfig(inputs=(run,), projection=swapped_run.projections["contrastive"], out=run, device="cpu")
        assert all(s.skipped for s in run_score(config, quiet=True).shards)
        assert {p: p.stat().st_mtime_ns for p in before} == stamps
        shutil.rmtree(layout.null_dir)
        run_score(config, quiet=True)  # the null drawn again: the same null, so the scores are kept
        assert {p: p.read_bytes() for p in before} == before
        run_score(ScoreConfig(inputs=(run,), projection=swapped_run.projections["contrastive"], out=run,
                              device="cpu", overwrite=True), quiet=True)
        assert {p: p.read_bytes() for p in before} == before  # identical files
        run_score(ScoreConfig(inputs=(run,), projection=swapped_run.projections["cosine"], out=run, device="cpu"),
                  quiet=True)
    assert len(list(layout.null_dir.glob("*.parquet"))) == 2  # one null per scoring projection
    cosine = read_card(swapped_run.projections["cosine"]).scoring_fingerprint
    assert all(read_scores_info(pq.read_schema(f)).null.projection == cosine for f in layout.shard_files(Table.SCORES))
