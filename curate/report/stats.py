"""Aggregates of a scored run, computed by DuckDB over the `scores` and `errors` views.

Only `similarity` (and the key, for per-shard figures) is read; what comes back to Python is
bin counts, quantiles and per-shard rows, never the scores themselves, so a run of millions
of pairs costs a few scans and a few kilobytes of memory.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from curate.io.run_database import RunDatabase
from curate.schemas.tables import Table

FINE_BINS = 600  # the sweep curve's resolution; the histogram groups them by HIST_GROUP
HIST_GROUP = 12  # 600 / 12 = 50 bars
SHARD_BINS = 30
COMMON_THRESHOLDS = (0.2, 0.25, 0.3, 0.5, 0.8)  # values users reach for first
KEEP_FRACTIONS = (0.9, 0.75, 0.5, 0.25, 0.1)  # thresholds that keep the top X% of pairs
QUANTILES = (0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99)
SHARD_EXPR = "split_part(key, '/', 1)"  # the key contract: `<shard-id>/<member>`


@dataclass
class Histogram:
    """Counts over equal-width bins; `edges` has one more entry than `counts`."""

    edges: np.ndarray
    counts: np.ndarray


@dataclass
class Threshold:
    """What `--min-sim value` keeps (similarity >= value); `label` says why it is marked."""

    label: str
    value: float
    kept: int
    fraction: float


@dataclass
class ShardRow:
    """One shard's figures, for the per-shard table and small multiples."""

    shard: str
    pairs: int
    mean: float
    p10: float
    p50: float
    p90: float
    errors: int = 0


@dataclass
class ScoreStats:
    """Everything the report shows about the similarity distribution."""

    pairs: int
    mean: float
    std: float
    low: float
    high: float
    quantiles: dict[float, float]
    histogram: Histogram
    thresholds: list[Threshold]
    shards: list[ShardRow]
    shard_histograms: dict[str, Histogram] = field(default_factory=dict)

    def sweep(self) -> tuple[np.ndarray, np.ndarray]:
        """(threshold, pairs kept) at every fine bin edge: kept = pairs with similarity >= edge."""
        kept = np.concatenate([np.cumsum(self.histogram.counts[::-1])[::-1], [0]])
        return self.histogram.edges, kept


@dataclass
class ErrorRow:
    """Errors of one stage and kind, with one example to show what they look like."""

    stage: str
    error: str
    count: int
    example_key: str
    example_message: str


def score_stats(db: RunDatabase, *, shard_panels: int) -> ScoreStats:
    """Summary, quantiles, histograms and threshold counts of `scores.similarity`."""
    pairs, mean, std, low, high = db.arrow(
        "SELECT count(*), avg(similarity), coalesce(stddev_pop(similarity), 0), min(similarity), max(similarity) FROM scores"
    ).to_pylist()[0].values()
    quantiles = _quantiles(db)
    hist = histogram(db, low=low, high=high, bins=FINE_BINS)
    shards = shard_rows(db)
    stats = ScoreStats(
        pairs=pairs, mean=mean, std=std, low=low, high=high, quantiles=quantiles, histogram=hist,
        thresholds=thresholds(db, quantiles, pairs), shards=shards,
    )
    drawn = [row.shard for row in sorted(shards, key=lambda r: r.mean)[:shard_panels]]
    stats.shard_histograms = shard_histograms(db, drawn, low=low, high=high)
    return stats


def histogram(db: RunDatabase, *, low: float, high: float, bins: int, where: str = "") -> Histogram:
    """Bin counts computed in DuckDB (one scan of the similarity column)."""
    width = max((high - low) / bins, 1e-9)
    rows = db.arrow(
        f"SELECT least(greatest(floor((similarity - ?) / ?)::BIGINT, 0), ?) AS bin, count(*) AS n "
        f"FROM scores {where} GROUP BY bin",
        [low, width, bins - 1],
    )
    counts = np.zeros(bins, dtype=np.int64)
    counts[np.asarray(rows.column("bin").to_pylist(), dtype=np.int64)] = rows.column("n").to_pylist()
    return Histogram(edges=low + width * np.arange(bins + 1), counts=counts)


def coarsen(hist: Histogram, group: int = HIST_GROUP) -> Histogram:
    """Merge `group` neighbouring bins: the histogram's bars from the sweep's fine bins."""
    usable = len(hist.counts) - len(hist.counts) % group
    counts = hist.counts[:usable].reshape(-1, group).sum(axis=1)
    counts[-1] += hist.counts[usable:].sum()
    return Histogram(edges=hist.edges[: usable + 1 : group], counts=counts)


def thresholds(db: RunDatabase, quantiles: dict[float, float], pairs: int) -> list[Threshold]:
    """Exact counts kept at the usual thresholds and at the quantiles that keep the top X%."""
    marks = [(f"min-sim {t:g}", float(t)) for t in COMMON_THRESHOLDS]
    marks += [(f"keeps top {f:.0%}", quantiles[round(1 - f, 2)]) for f in KEEP_FRACTIONS]
    filters = ", ".join(f"count(*) FILTER (WHERE similarity >= {value!r})" for _, value in marks)
    kept = list(db.arrow(f"SELECT {filters} FROM scores").to_pylist()[0].values())
    return [
        Threshold(label=label, value=value, kept=n, fraction=n / pairs if pairs else 0.0)
        for (label, value), n in zip(marks, kept)
    ]


def shard_rows(db: RunDatabase) -> list[ShardRow]:
    """Per-shard counts and similarity quantiles, with each shard's error count when known."""
    rows = db.arrow(
        f"SELECT {SHARD_EXPR} AS shard, count(*) AS pairs, avg(similarity) AS mean, "
        "quantile_cont(similarity, [0.1, 0.5, 0.9]) AS q FROM scores GROUP BY shard ORDER BY shard"
    ).to_pylist()
    errors = _errors_per_shard(db)
    return [
        ShardRow(shard=r["shard"], pairs=r["pairs"], mean=r["mean"], p10=r["q"][0], p50=r["q"][1], p90=r["q"][2],
                 errors=errors.get(r["shard"], 0))
        for r in rows
    ]


def shard_histograms(db: RunDatabase, shards: list[str], *, low: float, high: float) -> dict[str, Histogram]:
    """Histograms of a few shards on the overall bins, so they compare at a glance."""
    if not shards:
        return {}
    width = max((high - low) / SHARD_BINS, 1e-9)
    rows = db.arrow(
        f"SELECT {SHARD_EXPR} AS shard, least(greatest(floor((similarity - ?) / ?)::BIGINT, 0), ?) AS bin, "
        f"count(*) AS n FROM scores WHERE {SHARD_EXPR} IN (SELECT unnest(?)) GROUP BY ALL",
        [low, width, SHARD_BINS - 1, shards],
    ).to_pylist()
    edges = low + width * np.arange(SHARD_BINS + 1)
    out = {shard: Histogram(edges=edges, counts=np.zeros(SHARD_BINS, dtype=np.int64)) for shard in shards}
    for row in rows:
        out[row["shard"]].counts[row["bin"]] = row["n"]
    return out


def error_rows(db: RunDatabase) -> list[ErrorRow]:
    """The error table grouped by stage and kind, largest first."""
    if Table.ERRORS not in db.views:
        return []
    rows = db.arrow(
        "SELECT stage, error, count(*) AS n, min(key) AS k, arg_min(message, key) AS m "
        "FROM errors GROUP BY stage, error ORDER BY n DESC, stage, error"
    ).to_pylist()
    return [ErrorRow(r["stage"], r["error"], r["n"], r["k"], r["m"]) for r in rows]


@dataclass(frozen=True)
class StageRow:
    """Seconds one step spent in one stage over the run's finished shards."""

    step: str
    stage: str
    seconds: float
    share: float  # of the step's total


def stage_rows(db: RunDatabase) -> list[StageRow]:
    """Where the time went, per step, largest stage first (empty for runs without stats files)."""
    if "stages" not in db.views:
        return []
    rows = db.arrow(
        "SELECT step, stage, sum(seconds) AS s, sum(seconds) / sum(sum(seconds)) OVER (PARTITION BY step) AS f "
        "FROM stages GROUP BY step, stage ORDER BY step, s DESC"
    ).to_pylist()
    return [StageRow(r["step"], r["stage"], float(r["s"]), float(r["f"] or 0.0)) for r in rows]


def table_rows(db: RunDatabase, table: str) -> int:
    """Row count of a run table (0 when the run has none)."""
    if table not in db.views:
        return 0
    return int(db.arrow(f"SELECT count(*) AS n FROM {table}").column("n")[0].as_py())


def _quantiles(db: RunDatabase) -> dict[float, float]:
    listed = ", ".join(repr(q) for q in QUANTILES)
    values = db.arrow(f"SELECT quantile_cont(similarity, [{listed}]) AS q FROM scores").column("q")[0].as_py()
    return dict(zip(QUANTILES, values))


def _errors_per_shard(db: RunDatabase) -> dict[str, int]:
    if Table.ERRORS not in db.views:
        return {}
    rows = db.arrow(f"SELECT {SHARD_EXPR} AS shard, count(*) AS n FROM errors GROUP BY shard").to_pylist()
    return {r["shard"]: r["n"] for r in rows}
