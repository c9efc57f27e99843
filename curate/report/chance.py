"""The null beside the real scores: how many of the pairs a threshold keeps are chance matches.

A threshold keeps K of a run's N pairs. If a share pi0 of the run's pairs have captions
unrelated to their images, and unrelated captions score like the run's null (mismatched
pairs of the same run, `curate.pipelines.null`), then about pi0 * N * F0 of the kept pairs
are such chance matches, F0 being the share of the null the threshold lets through; the
expected share of chance matches among the kept pairs is pi0 * N * F0 / K (the estimated
false discovery rate of Storey's method). pi0 is estimated from the run itself: unrelated
pairs have uniform false-match rates, true ones crowd near 0, so twice the share of pairs
with a rate above 1/2 bounds it from above (Storey's lambda = 1/2), capped at 1.

Only aggregates come back from DuckDB; the null (tens of thousands of floats) is read whole.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow.parquet as pq

from curate.io.run_database import RunDatabase
from curate.report.stats import histogram
from curate.schemas.layout import RunLayout
from curate.schemas.tables import FALSE_MATCH_RATE, NullInfo, Table, read_scores_info

STOREY_LAMBDA = 0.5
PICTURE_BINS = 50  # the report's run-beside-null figure


@dataclass
class RunNull:
    """A run's null: its record, its scores by fold (sorted), and pi0 estimated from the run."""

    info: NullInfo
    by_fold: tuple[np.ndarray, ...]
    pi0: float

    @property
    def scores(self) -> np.ndarray:
        return np.concatenate(self.by_fold) if self.by_fold else np.zeros(0, dtype=np.float32)

    def share_at_least(self, value: float) -> float:
        """Share of the (pooled) null scoring >= `value`: what `--min-sim value` lets through."""
        scores = self.scores
        return float((scores >= np.float32(value)).mean()) if len(scores) else float("nan")

    def share_within_rate(self, rate: float) -> float:
        """Share of the null whose own false-match rate is <= `rate`: what `--max-false-match` lets through."""
        kept = total = 0
        for null in self.by_fold:
            if len(null):
                own = (len(null) - np.searchsorted(null, null, side="left")) / len(null)
                kept, total = kept + int((own <= rate).sum()), total + len(null)
        return kept / total if total else float("nan")

    def chance_share(self, *, pairs: int, kept: int, null_share: float) -> float | None:
        """Expected share of the `kept` pairs that are chance matches (None when nothing is kept)."""
        if kept <= 0 or not np.isfinite(null_share):
            return None
        return float(min(1.0, self.pi0 * pairs * null_share / kept))


def run_null(db: RunDatabase) -> RunNull | None:
    """The null the run's scores were rated against, or None (scores made before it existed, scores
    rated against different nulls, or its file gone)."""
    found = [_null_of(path) for path in db.layout.shard_files(Table.SCORES)]
    if not found or None in found or len({i.digest for i in found}) != 1:  # type: ignore[union-attr]
        return None
    info: NullInfo = found[0]  # type: ignore[assignment]
    path = RunLayout(db.layout.root).null(info.projection)
    try:
        table = pq.read_table(path, columns=["fold", "similarity"])
    except OSError:
        return None
    fold, sims = table.column("fold").to_numpy(), table.column("similarity").to_numpy().astype(np.float32)
    by_fold = tuple(np.sort(sims[fold == k]) for k in range(info.folds))
    return RunNull(info, by_fold, pi0=estimate_pi0(db))


def _null_of(path: object) -> NullInfo | None:
    try:
        return read_scores_info(pq.read_schema(path)).null
    except (KeyError, TypeError, ValueError, OSError):
        return None


def estimate_pi0(db: RunDatabase) -> float:
    """Storey's estimate of the share of pairs whose caption is unrelated to their image (at most 1)."""
    row = db.arrow(f"SELECT count({FALSE_MATCH_RATE}) AS n, count(*) FILTER (WHERE {FALSE_MATCH_RATE} > "
                   f"{STOREY_LAMBDA!r}) AS above FROM scores").to_pylist()[0]
    if not row["n"]:
        return 1.0
    return float(min(1.0, row["above"] / ((1 - STOREY_LAMBDA) * row["n"])))


def kept_by_rate(db: RunDatabase, rates: tuple[float, ...]) -> list[int]:
    """Pairs `--max-false-match r` keeps, for each r, in one scan."""
    if not rates:
        return []
    filters = ", ".join(f"count(*) FILTER (WHERE {FALSE_MATCH_RATE} <= {float(r)!r})" for r in rates)
    return [int(n) for n in db.arrow(f"SELECT {filters} FROM scores").to_pylist()[0].values()]


@dataclass
class NullPicture:
    """The run's scores and its null counted on the same bins, spanning both (for the report's figure)."""

    edges: np.ndarray
    run: np.ndarray
    null: np.ndarray
    pi0: float


def null_picture(db: RunDatabase, null: RunNull, *, bins: int = PICTURE_BINS) -> NullPicture:
    """Bins over the union of both ranges: the null's tails often reach past the run's scores,
    and a figure cut at the run's range would hide what a threshold lets through."""
    scores = null.scores.astype(np.float64)
    span = db.arrow("SELECT min(similarity)::DOUBLE AS lo, max(similarity)::DOUBLE AS hi FROM scores").to_pylist()[0]
    low, high = span["lo"], span["hi"]
    if len(scores):
        low, high = min(low, float(scores.min())), max(high, float(scores.max()))
    run = histogram(db, low=low, high=high, bins=bins)
    counts = np.histogram(np.clip(scores, run.edges[0], run.edges[-1]), bins=run.edges)[0]
    return NullPicture(edges=run.edges, run=run.counts, null=counts, pi0=null.pi0)
