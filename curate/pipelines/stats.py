"""`curate stats RUN_DIR`: the distribution of `similarity` over a run's scores files.

DuckDB scans the `scores` view (the same view `sql`, `report` and `filter --where` use) and
returns only aggregates, so a run of any size costs a few column scans and kilobytes of
memory. Binning is shared with the HTML report, so both draw the same histogram. When the
scores were rated against a null (`curate score` draws one), the null is shown beside them
on the same bins, and every threshold gets the expected share of its kept pairs that are
chance matches (`curate.report.chance`), the `--max-false-match` marks included.
"""

from __future__ import annotations

import logging
from dataclasses import replace

import numpy as np
import pyarrow.parquet as pq

from curate.io.run_database import RunDatabase
from curate.report.chance import RunNull, kept_by_rate, run_null
from curate.report.stats import histogram
from curate.schemas.config.flow import StatsConfig
from curate.schemas.layout import RunLayout
from curate.schemas.stats import (
    HistogramBin,
    NullStats,
    SimilarityStats,
    ThresholdCount,
    quantile_name,
)
from curate.schemas.tables import Table, read_scores_info

log = logging.getLogger("curate")
SUMMARY_SQL = (
    "SELECT count(similarity) AS n, avg(similarity::DOUBLE) AS mean, stddev_pop(similarity::DOUBLE) AS std, "
    "min(similarity)::DOUBLE AS low, max(similarity)::DOUBLE AS high, "
    "quantile_cont(similarity::DOUBLE, ?) AS q FROM scores"
)


def projections_of(layout: RunLayout) -> tuple[str, ...]:
    """Fingerprints named by the scores files (more than one means shards were scored apart)."""
    found = set()
    for path in layout.shard_files(Table.SCORES):
        try:
            found.add(read_scores_info(pq.read_schema(path)).projection)
        except (KeyError, ValueError, TypeError):
            found.add("unknown")
    return tuple(sorted(found))


def threshold_counts(db: RunDatabase, marks: list[tuple[str, float]], count: int) -> tuple[ThresholdCount, ...]:
    """Exact pairs kept (similarity >= value) at each mark, in one scan."""
    if not marks:
        return ()
    filters = ", ".join(f"count(*) FILTER (WHERE similarity >= {float(value)!r})" for _, value in marks)
    kept = list(db.arrow(f"SELECT {filters} FROM scores").to_pylist()[0].values())
    return tuple(
        ThresholdCount(label=label, value=float(value), kept=int(n), fraction=n / count if count else 0.0)
        for (label, value), n in zip(marks, kept)
    )


def threshold_marks(config: StatsConfig, quantiles: dict[float, float]) -> list[tuple[str, float]]:
    """Fixed thresholds, then the quantiles that keep the top x of pairs (when there are pairs)."""
    marks = [(f"min-sim {t:g}", float(t)) for t in config.thresholds]
    if quantiles:
        marks += [(f"keeps top {f:.0%}", quantiles[top_quantile(f)]) for f in config.top_fractions]
    return marks


def top_quantile(fraction: float) -> float:
    """The quantile whose threshold keeps the top `fraction` (rounded so it works as a dict key)."""
    return round(1.0 - fraction, 10)


def histogram_bins(db: RunDatabase, *, low: float, high: float, bins: int) -> tuple[HistogramBin, ...]:
    hist = histogram(db, low=low, high=high, bins=bins)
    edges = [float(e) for e in hist.edges]
    edges[-1] = high
    return tuple(HistogramBin(edges[i], edges[i + 1], int(c)) for i, c in enumerate(hist.counts))


def run_stats(config: StatsConfig) -> SimilarityStats:
    """Aggregate `similarity` over every finished scores file of `config.run_dir`."""
    config.validate()
    layout = RunLayout(config.run_dir)
    wanted = sorted({round(q, 10) for q in config.quantiles} | {top_quantile(f) for f in config.top_fractions})
    with RunDatabase(config.run_dir) as db:
        db.require(Table.SCORES)
        row = db.arrow(SUMMARY_SQL, [wanted]).to_pylist()[0]
        count = int(row["n"])
        quantiles = dict(zip(wanted, row["q"])) if count else {}
        bins = histogram_bins(db, low=row["low"], high=row["high"], bins=config.bins) if count else ()
        thresholds = threshold_counts(db, threshold_marks(config, quantiles), count)
        null = run_null(db) if count else None
        if null is not None:
            thresholds = with_chance(thresholds, null, count) + false_match_counts(db, null, config, count)
    projections = projections_of(layout)
    if len(projections) > 1:
        log.warning("the scores files of %s were made by %d different projections", config.run_dir, len(projections))
    return SimilarityStats(
        run=str(config.run_dir), files=len(layout.shard_files(Table.SCORES)), projections=projections, count=count,
        mean=row["mean"], std=row["std"], min=row["low"], max=row["high"],
        quantiles={quantile_name(q): quantiles[round(q, 10)] for q in config.quantiles} if count else {},
        histogram=bins, thresholds=thresholds, null=null_stats(null, config, bins) if null is not None else None,
    )


def with_chance(marks: tuple[ThresholdCount, ...], null: RunNull, count: int) -> tuple[ThresholdCount, ...]:
    """Each --min-sim mark with the expected share of its kept pairs that are chance matches."""
    return tuple(replace(m, chance_share=null.chance_share(pairs=count, kept=m.kept, null_share=null.share_at_least(m.value)))
                 for m in marks)


def false_match_counts(db: RunDatabase, null: RunNull, config: StatsConfig, count: int) -> tuple[ThresholdCount, ...]:
    """What each --max-false-match mark keeps, and the expected share of chance matches among it."""
    kept = kept_by_rate(db, config.false_matches)
    return tuple(
        ThresholdCount(label=f"false-match {rate:g}", value=rate, kept=n, fraction=n / count if count else 0.0,
                       option="--max-false-match",
                       chance_share=null.chance_share(pairs=count, kept=n, null_share=null.share_within_rate(rate)))
        for rate, n in zip(config.false_matches, kept)
    )


def null_stats(null: RunNull, config: StatsConfig, bins: tuple[HistogramBin, ...]) -> NullStats:
    """The null's spread, quantiles and histogram on the similarity histogram's bins."""
    scores = null.scores.astype(np.float64)
    edges = [b.low for b in bins] + [bins[-1].high] if bins else []
    counts = np.histogram(scores, bins=edges)[0].tolist() if edges else []
    spread = (scores.mean(), scores.std(), scores.min(), scores.max()) if len(scores) else (float("nan"),) * 4
    return NullStats(
        pairs=len(scores), folds=null.info.folds, seed=null.info.seed, size=null.info.size, pi0=null.pi0,
        mean=float(spread[0]), std=float(spread[1]), min=float(spread[2]), max=float(spread[3]),
        quantiles={quantile_name(q): float(np.quantile(scores, q)) for q in config.quantiles} if len(scores) else {},
        histogram=tuple(HistogramBin(b.low, b.high, int(c)) for b, c in zip(bins, counts)),
        below=int((scores < edges[0]).sum()) if edges else 0, above=int((scores > edges[-1]).sum()) if edges else 0,
    )
