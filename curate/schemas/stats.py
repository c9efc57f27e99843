"""What `curate stats` reports about a run's `similarity` column; `--json` prints `to_json()`."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class HistogramBin:
    """Pairs with low <= similarity < high (the last bin also holds the maximum)."""

    low: float
    high: float
    count: int


@dataclass(frozen=True)
class ThresholdCount:
    """What `--min-sim value` keeps (similarity >= value); `label` says why it is listed."""

    label: str
    value: float
    kept: int
    fraction: float


@dataclass(frozen=True)
class SimilarityStats:
    """Count, spread, quantiles, histogram and threshold counts over every scores file of a run.

    `std` is the population standard deviation; quantiles interpolate linearly (numpy's default).
    Statistics of an empty run are None.
    """

    run: str
    files: int
    projections: tuple[str, ...]  # fingerprints of the projections that made the scores files
    count: int
    mean: float | None
    std: float | None
    min: float | None
    max: float | None
    quantiles: dict[str, float]  # "p01" -> value
    histogram: tuple[HistogramBin, ...]
    thresholds: tuple[ThresholdCount, ...]

    def to_json(self) -> dict:
        return asdict(self)


def quantile_name(q: float) -> str:
    """0.05 -> "p05", 0.5 -> "p50", 0.999 -> "p99.9"."""
    return f"p{q * 100:02.0f}" if round(q * 100, 6).is_integer() else f"p{q * 100:g}"
