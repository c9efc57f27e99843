"""`curate stats`: every figure equals a numpy computation over the same scores files."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from curate.errors import CurateError
from curate.pipelines.stats import run_stats
from curate.schemas.config.flow import StatsConfig
from curate.schemas.layout import RunLayout

ENV = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")


def similarities(run: Path) -> np.ndarray:
    files = RunLayout(run).shard_files("scores")
    return np.concatenate([pq.read_table(p, columns=["similarity"]).column(0).to_numpy() for p in files]).astype(np.float64)


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "curate.cli", *args], capture_output=True, text=True, env=ENV, timeout=120)


def test_figures_equal_numpy(scored_scene_run: Path):
    config = StatsConfig(run_dir=scored_scene_run, thresholds=(0.2, 0.3, 0.5, 0.8), bins=12)
    stats, sims = run_stats(config), similarities(scored_scene_run)
    assert stats.count == len(sims) == 600 and stats.files == 3 and len(stats.projections) == 1
    assert stats.mean == pytest.approx(sims.mean(), abs=1e-9)
    assert stats.std == pytest.approx(sims.std(), abs=1e-9)
    assert (stats.min, stats.max) == (sims.min(), sims.max())
    expected_q = np.quantile(sims, config.quantiles)
    assert list(stats.quantiles) == ["p01", "p05", "p25", "p50", "p75", "p95", "p99"]
    np.testing.assert_allclose(list(stats.quantiles.values()), expected_q, atol=1e-9)
    counts, edges = np.histogram(sims, bins=12, range=(sims.min(), sims.max()))
    assert [b.count for b in stats.histogram] == counts.tolist()
    np.testing.assert_allclose([b.low for b in stats.histogram] + [stats.histogram[-1].high], edges, atol=1e-9)
    kept = {t.label: t for t in stats.thresholds}
    for value in config.thresholds:
        assert kept[f"min-sim {value:g}"].kept == int((sims >= value).sum())
    for fraction in config.top_fractions:
        mark = kept[f"keeps top {fraction:.0%}"]
        assert mark.value == pytest.approx(np.quantile(sims, 1 - fraction), abs=1e-9)
        assert mark.kept == int((sims >= mark.value).sum())
        assert mark.fraction == pytest.approx(fraction, abs=0.01)


def rounded(value):
    """`value` with every float rounded to 9 significant digits, recursively."""
    if isinstance(value, float):
        return float(f"{value:.9g}")
    if isinstance(value, dict):
        return {k: rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [rounded(v) for v in value]
    return value


def test_json_on_stdout_matches_the_api(scored_scene_run: Path):
    result = run_cli("stats", str(scored_scene_run), "--json", "-t", "0.25")
    assert result.returncode == 0, result.stderr
    printed = json.loads(result.stdout)
    expected = json.loads(json.dumps(run_stats(StatsConfig(run_dir=scored_scene_run, thresholds=(0.25,))).to_json()))
    # DuckDB sums floats in parallel, so means and spreads may differ in the last bits.
    assert rounded(printed) == rounded(expected)
    assert printed["thresholds"][0]["label"] == "min-sim 0.25"


def test_terminal_output_has_histogram_bars(scored_scene_run: Path):
    result = run_cli("stats", str(scored_scene_run), "--bins", "6")
    assert result.returncode == 0, result.stderr
    assert "█" in result.stdout and "keeps top 10%" in result.stdout and "p99" in result.stdout


def test_run_without_scores_and_empty_scores(scored_scene_run: Path, scene_run, tmp_path):
    (tmp_path / "bare" / "embeddings").mkdir(parents=True)
    shutil.copy2(RunLayout(scene_run.run).shard_files("embeddings")[0], tmp_path / "bare" / "embeddings")
    with pytest.raises(CurateError, match="no scores/ files"):
        run_stats(StatsConfig(run_dir=tmp_path / "bare"))
    empty = tmp_path / "empty" / "scores"
    empty.mkdir(parents=True)
    source = RunLayout(scored_scene_run).shard_files("scores")[0]
    pq.write_table(pq.read_table(source).slice(0, 0), empty / "00000.parquet")
    stats = run_stats(StatsConfig(run_dir=tmp_path / "empty"))
    assert stats.count == 0 and stats.mean is None and stats.histogram == () and stats.quantiles == {}
    assert [t.kept for t in stats.thresholds] == [0, 0, 0, 0]


@pytest.mark.parametrize(
    "args, says",
    [
        (["stats", "{scored}", "--threshold", "1.5"], "--threshold must lie in [-1, 1]"),
        (["stats", "{tmp}"], "is it a run directory"),
        (["train", "{tmp}", "--out", "{tmp}/proj"], "has no embeddings"),
    ],
)
def test_cli_errors_are_one_line_and_exit_2(args, says, scored_scene_run: Path, tmp_path):
    result = run_cli(*(a.format(scored=scored_scene_run, tmp=tmp_path) for a in args))
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and says in lines[0], result.stderr
