"""The report's figures as PNG bytes, drawn with matplotlib's object API (no pyplot state).

`Figure` objects render through the Agg canvas without selecting a global backend, so the
report works on headless machines and never opens a window. Text that comes from the run
(shard names, the projection card) is drawn with `parse_math=False`: a name holding `$...$`
is shown as typed, not parsed as mathtext (where a bad command would crash the report).
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Any

import numpy as np

from curate.errors import CurateError
from curate.report.chance import NullPicture
from curate.report.embedding_map import EmbeddingMap
from curate.report.stats import Histogram, ScoreStats, coarsen

if TYPE_CHECKING:
    from matplotlib.figure import Figure

DPI = 110
BAR = "#4c72b0"
MARK = "#c44e52"
QUANT = "#55a868"
SHARD_COLUMNS = 4


def histogram_png(stats: ScoreStats) -> bytes:
    """The similarity histogram of all pairs, with the mean and the median marked."""
    fig = _figure(8, 3.6)
    ax = fig.subplots()
    _bars(ax, coarsen(stats.histogram))
    ax.axvline(stats.mean, color=MARK, linestyle="--", linewidth=1.2, label=f"mean {stats.mean:.3f}")
    ax.axvline(stats.quantiles[0.5], color=QUANT, linestyle=":", linewidth=1.5, label=f"median {stats.quantiles[0.5]:.3f}")
    ax.set(xlabel="similarity", ylabel="pairs", title=f"similarity of {stats.pairs:,} pairs")
    ax.yaxis.set_major_formatter(_counts_formatter())
    ax.legend(loc="best", frameon=False)
    return _png(fig)


def shard_histograms_png(stats: ScoreStats) -> bytes | None:
    """Small multiples, one per drawn shard, on shared bins: a bad shard stands out."""
    shards = list(stats.shard_histograms.items())
    if not shards:
        return None
    rows = -(-len(shards) // SHARD_COLUMNS)
    columns = min(len(shards), SHARD_COLUMNS)
    fig = _figure(2.6 * columns + 0.6, 1.9 * rows + 0.4)
    axes = np.atleast_1d(fig.subplots(rows, columns, sharex=True, squeeze=False)).ravel()
    for ax, (shard, hist) in zip(axes, shards):
        _bars(ax, hist)
        ax.set_title(shard, fontsize=8, parse_math=False)  # a shard name is data: `$...$` is not mathtext
        ax.tick_params(labelsize=7)
    for ax in axes[len(shards):]:
        ax.set_visible(False)
    fig.supxlabel("similarity", fontsize=9)
    return _png(fig)


def sweep_png(stats: ScoreStats) -> bytes:
    """Fraction (left axis) and count (right axis) kept by `--min-sim t`, thresholds marked."""
    edges, kept = stats.sweep()
    fig = _figure(8, 3.8)
    ax = fig.subplots()
    total = max(stats.pairs, 1)
    ax.plot(edges, kept / total, color=BAR, linewidth=2)
    ax.set(xlabel="--min-sim (keep similarity >= t)", ylabel="fraction kept", ylim=(0, 1.02))
    right = ax.secondary_yaxis("right", functions=(lambda f: f * total, lambda n: n / total))
    right.set_ylabel("pairs kept")
    right.yaxis.set_major_formatter(_counts_formatter())
    _mark_thresholds(ax, stats, low=edges[0], high=edges[-1])
    ax.set_title("what a threshold keeps (red dashed: common values, green dotted: quantiles)", fontsize=10, pad=46)
    ax.grid(alpha=0.3)
    return _png(fig)


def null_png(picture: NullPicture) -> bytes:
    """The run's scores (bars) beside its null (line), as densities on the same bins: the
    pairs whose captions are unrelated to their images score like the line, so the run's bars
    above it at high similarity are what a threshold keeps for real. The dashed line is the null
    scaled by pi0, the estimated share of unrelated pairs: the part of the bars that is chance."""
    fig = _figure(8, 3.6)
    ax = fig.subplots()
    widths = np.diff(picture.edges)
    run = picture.run / max(picture.run.sum(), 1) / widths
    null = picture.null / max(picture.null.sum(), 1) / widths
    ax.bar(picture.edges[:-1], run, width=widths, align="edge", color=BAR, edgecolor="white", linewidth=0.3,
           label="the run's pairs")
    ax.stairs(null, picture.edges, color=MARK, linewidth=1.8, label="mismatched pairs (null)")
    ax.stairs(null * picture.pi0, picture.edges, color=MARK, linewidth=1, linestyle="--",
              label=f"null x pi0 ({picture.pi0:.2f}): expected chance matches")
    ax.set(xlabel="similarity", ylabel="density", title="the run's scores beside its null (same bins)")
    ax.legend(loc="best", frameon=False, fontsize=8)
    return _png(fig)


def map_png(points: EmbeddingMap) -> bytes:
    """The sampled embeddings on their first two principal axes, coloured by similarity."""
    fig = _figure(7, 5.6)
    ax = fig.subplots()
    order = np.argsort(points.similarity)  # high similarity drawn on top
    size = 14 if len(order) < 2000 else 5
    dots = ax.scatter(points.xy[order, 0], points.xy[order, 1], c=points.similarity[order], s=size,
                      cmap="viridis", alpha=0.85, linewidths=0)
    fig.colorbar(dots, ax=ax, label="similarity")
    ax.set(xlabel=f"PC1 ({points.explained[0]:.0%} of variance)", ylabel=f"PC2 ({points.explained[1]:.0%})")
    ax.set_title(f"{len(order):,} sampled images: {points.space}", fontsize=10, parse_math=False)
    return _png(fig)


def _mark_thresholds(ax: Any, stats: ScoreStats, *, low: float, high: float) -> None:
    """A line per marked threshold, a dot where it meets the curve, its name above the plot."""
    top = ax.get_xaxis_transform()  # x in data units, y in axes units
    for mark in stats.thresholds:
        if not low <= mark.value <= high:
            continue
        quantile = mark.label.startswith("keeps")
        colour = QUANT if quantile else MARK
        ax.axvline(mark.value, color=colour, linestyle=":" if quantile else "--", linewidth=1)
        ax.plot([mark.value], [mark.fraction], "o", color=colour, markersize=4)
        name = mark.label.replace("keeps ", "") if quantile else f"{mark.value:g}"
        ax.text(mark.value, 1.01, name, transform=top, rotation=90, fontsize=7, color=colour, ha="center", va="bottom")


def _counts_formatter() -> Any:
    """Counts as 250k / 1.2M instead of an offset like `1e6` over the axis."""
    from matplotlib.ticker import EngFormatter

    return EngFormatter(sep="")


def _bars(ax: object, hist: Histogram) -> None:
    widths = np.diff(hist.edges)
    ax.bar(hist.edges[:-1], hist.counts, width=widths, align="edge", color=BAR, edgecolor="white", linewidth=0.3)  # type: ignore[attr-defined]


def _figure(width: float, height: float) -> "Figure":
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise CurateError("`curate report` draws its figures with matplotlib: pip install matplotlib") from None
    return Figure(figsize=(width, height), dpi=DPI, layout="constrained")


def _png(fig: "Figure") -> bytes:
    out = io.BytesIO()
    fig.savefig(out, format="png", dpi=DPI)
    return out.getvalue()
