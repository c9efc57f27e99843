"""The training log: rows of (step, epoch, name, value), saved as CSV and drawn as PNG curves.

Long format (one metric per row) so a new metric needs no schema change; the CSV is
rewritten atomically after every epoch, so a killed run keeps its curves up to then.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from curate.io.atomic import atomic_path

FIELDS = ("step", "epoch", "name", "value")
HISTORY_CSV = "log_history.csv"
CURVES_PNG = "curves.png"


def read_history_csv(path: Path) -> list[dict[str, Any]]:
    """The rows `write_history_csv` wrote (to redraw curves, or compare runs)."""
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def write_history_csv(rows: list[dict[str, Any]], path: Path) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=FIELDS, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    with atomic_path(path) as tmp:
        tmp.write_text(buffer.getvalue())


def series(rows: list[dict[str, Any]], name: str) -> tuple[list[float], list[float]]:
    """(steps, values) of one metric."""
    picked = [r for r in rows if r["name"] == name]
    return [float(r["step"]) for r in picked], [float(r["value"]) for r in picked]


def draw_curves(rows: list[dict[str, Any]], path: Path, *, title: str) -> None:
    """Loss curves (train and validation) and, when logged, validation METEOR, as one PNG."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    extra = [n for n in ("validation_meteor",) if series(rows, n)[0]]
    figure = Figure(figsize=(4.2 * (1 + len(extra)), 3.0), dpi=90)
    FigureCanvasAgg(figure)
    axes = figure.subplots(1, 1 + len(extra), squeeze=False)[0]
    for name, style in (("train_loss", "-"), ("validation_loss", "o-")):
        steps, values = series(rows, name)
        if steps:
            axes[0].plot(steps, values, style, label=name.replace("_", " "), markersize=3)
    axes[0].set(xlabel="optimizer step", ylabel="loss")
    axes[0].set_title(title, parse_math=False)  # holds the base model's folder name: text, not mathtext
    losses = series(rows, "train_loss")[1] + series(rows, "validation_loss")[1]
    if losses and min(losses) > 0 and max(losses) / min(losses) > 20:
        axes[0].set_yscale("log")  # the first steps of a fresh model would flatten the rest
    axes[0].legend(fontsize=8)
    for ax, name in zip(axes[1:], extra):
        steps, values = series(rows, name)
        ax.plot(steps, values, "o-", markersize=3)
        ax.set(xlabel="optimizer step", ylabel=name.replace("_", " "), title="validation")
    figure.tight_layout()
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png")
