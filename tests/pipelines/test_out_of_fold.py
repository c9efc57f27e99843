"""Out-of-fold projections and `curate stats` beside the null, on the scenes with rotated captions.

Each pair must be scored by its fold's projection, and that projection must not have trained
on it: pairs score visibly higher under a projection that trained on them than under the one
that did not. `stats` must show the null it was rated against and the pairs each
`--max-false-match` mark keeps.
"""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from click.testing import CliRunner

from curate.cli.app import app
from curate.io.embeddings import read_pairs
from curate.models.folds import load_scorer
from curate.models.projection import read_card
from curate.pipelines.stats import run_stats
from curate.schemas.config.flow import StatsConfig
from curate.schemas.layout import RunLayout
from curate.schemas.tables import FALSE_MATCH_RATE, Table, read_scores_info
from tests.pipelines.scene_runs import one_thread
from tests.pipelines.swapped_runs import SwappedRun


def scores(run) -> dict[str, tuple[float, float]]:
    table = pa.concat_tables(pq.read_table(p, columns=["key", "similarity", FALSE_MATCH_RATE])
                             for p in RunLayout(run).shard_files(Table.SCORES))
    return {k: (s, r) for k, s, r in zip(*(table.column(c).to_pylist() for c in table.column_names))}


def test_each_pair_is_scored_by_the_projection_that_never_saw_it(swapped_run: SwappedRun):
    projection = swapped_run.projections["contrastive"]
    card = read_card(projection)
    assert card.folds.count == 5 and all((projection / "folds" / str(k)).is_dir() for k in range(5))
    with one_thread():
        scorer = load_scorer(projection, card)
        keys, image, text = read_pairs(swapped_run.embedded)
        folds = scorer.fold_of(keys)
        under = np.stack([m.similarity(image, text) for m in scorer.models])  # (5, pairs): every pair, every fold model
    stored = scores(swapped_run.runs["contrastive"])
    own = under[folds, np.arange(len(keys))]
    assert np.allclose(own, [stored[k][0] for k in keys], atol=1e-5)
    assert tuple(np.bincount(folds, minlength=5)) == card.folds.pairs  # every pair of the run lies in one fold
    for k in range(5):
        held_out = under[k, folds == k].mean()
        seen = np.mean([under[j, folds == k].mean() for j in range(5) if j != k])
        print(f"fold {k}: mean similarity {held_out:.3f} by its own projection, {seen:.3f} by those that trained on it")
        assert held_out < seen


def test_stats_shows_the_null_and_what_each_rate_keeps(swapped_run: SwappedRun):
    run = swapped_run.runs["contrastive"]
    stats = run_stats(StatsConfig(run_dir=run))
    info = read_scores_info(pq.read_schema(RunLayout(run).shard_files(Table.SCORES)[0])).null
    null = stats.null
    assert null is not None and (null.pairs, null.folds, null.seed, null.size) == (info.pairs, 5, 0, 10_000)
    assert sum(b.count for b in null.histogram) + null.below + null.above == null.pairs
    assert [(b.low, b.high) for b in null.histogram] == [(b.low, b.high) for b in stats.histogram]
    assert 0.05 <= null.pi0 <= 0.3  # 10% of the captions are wrong; Storey's estimate is an upper one
    rates = [r for _, r in scores(run).values()]
    marks = [t for t in stats.thresholds if t.option == "--max-false-match"]
    assert [t.value for t in marks] == [0.001, 0.01, 0.05, 0.1]
    assert all(t.kept == sum(r <= t.value for r in rates) for t in marks)
    printed = CliRunner().invoke(app, ["stats", str(run)])
    assert printed.exit_code == 0 and "null (" in printed.output and "chance matches among kept" in printed.output
    as_json = json.loads(CliRunner().invoke(app, ["stats", str(run), "--json"]).output)
    assert as_json["null"]["pairs"] == null.pairs and as_json["null"]["pi0"] == null.pi0
