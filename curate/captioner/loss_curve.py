"""A training run's per-epoch losses: the CSV log and its PNG curve.

The CSV is rewritten whole (atomically) after every epoch, so a killed run leaves a log that
matches its last checkpoint; the curve is drawn with matplotlib's object API on the Agg
canvas, which needs no display.
"""

from __future__ import annotations

import csv
import io
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from curate.errors import CurateError
from curate.io.atomic import atomic_path

DPI = 110


@dataclass(frozen=True)
class EpochLosses:
    """One row of `history.csv`."""

    epoch: int
    train_loss: float
    val_loss: float
    seconds: float
    best: bool


def write_history(path: Path, rows: list[EpochLosses]) -> None:
    """Rewrite the whole log; it is small (one row per epoch)."""
    names = [f.name for f in fields(EpochLosses)]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=names, lineterminator="\n")
    writer.writeheader()
    writer.writerows(asdict(row) for row in rows)
    with atomic_path(Path(path)) as tmp:
        tmp.write_text(buffer.getvalue())


def read_history(path: Path) -> list[EpochLosses]:
    """The rows of a log written by `write_history` ([] when there is none yet)."""
    if not Path(path).is_file():
        return []
    with open(path, newline="") as handle:
        return [
            EpochLosses(
                epoch=int(r["epoch"]), train_loss=float(r["train_loss"]), val_loss=float(r["val_loss"]),
                seconds=float(r["seconds"]), best=r["best"] == "True",
            )
            for r in csv.DictReader(handle)
        ]


def plot_losses(rows: list[EpochLosses], path: Path, *, title: str = "captioner training") -> None:
    """Train and validation loss against epoch, the best epoch marked."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise CurateError("The loss curve is drawn with matplotlib: pip install matplotlib") from None
    fig = Figure(figsize=(5.5, 3.4), dpi=DPI, layout="constrained")
    ax = fig.add_subplot()
    epochs = [r.epoch for r in rows]
    ax.plot(epochs, [r.train_loss for r in rows], marker="o", ms=3, label="train")
    ax.plot(epochs, [r.val_loss for r in rows], marker="o", ms=3, label="validation")
    best = min(rows, key=lambda r: r.val_loss)
    ax.scatter([best.epoch], [best.val_loss], s=60, facecolors="none", edgecolors="#c44e52", label="best checkpoint")
    ax.set(xlabel="epoch", ylabel="cross-entropy per prompt token", title=title)
    ax.grid(alpha=0.3)
    ax.legend()
    with atomic_path(Path(path)) as tmp:
        fig.savefig(tmp, format="png", dpi=DPI)
