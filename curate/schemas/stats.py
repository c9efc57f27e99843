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
    """What `--min-sim value` keeps (similarity >= value), or for `option` `--max-false-match` what
    that keeps (false_match_rate <= value); `label` says why it is listed. `chance_share` is the
    expected share of the kept pairs that are chance matches (None without a null, or nothing kept)."""

    label: str
    value: float
    kept: int
    fraction: float
    option: str = "--min-sim"
    chance_share: float | None = None


@dataclass(frozen=True)
class NullStats:
    """The run's null distribution (mismatched pairs of the run, scored as its pairs) beside its scores.

    `histogram` uses the similarity histogram's bins; `below`/`above` count null scores outside
    them. `pi0` estimates the share of the run's pairs whose caption is unrelated to the image.
    """

    pairs: int
    folds: int
    seed: int
    size: int
    pi0: float
    mean: float
    std: float
    min: float
    max: float
    quantiles: dict[str, float]
    histogram: tuple[HistogramBin, ...]
    below: int
    above: int


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
    null: NullStats | None = None  # None for scores made before false_match_rate existed

    def to_json(self) -> dict:
        return asdict(self)


def quantile_name(q: float) -> str:
    """0.05 -> "p05", 0.5 -> "p50", 0.999 -> "p99.9"."""
    return f"p{q * 100:02.0f}" if round(q * 100, 6).is_integer() else f"p{q * 100:g}"
