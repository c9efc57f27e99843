"""End-of-run tables of the `caption` commands (rich tables on stdout)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.table import Table

if TYPE_CHECKING:  # annotations only: the pipelines load torch
    from curate.captioner.eval import CaptionEvalSummary
    from curate.captioner.train import CaptionTrainSummary


def train_table(summary: CaptionTrainSummary) -> Table:
    """Loss per epoch of this run, the best epoch marked, and where the checkpoints are."""
    table = Table(title=f"curate caption train -> {summary.out}", title_justify="left")
    for name in ("epoch", "train loss", "validation loss", "seconds", ""):
        table.add_column(name, justify="right" if name else "left")
    for row in summary.history:
        if row.epoch > summary.resumed_from:
            table.add_row(str(row.epoch), f"{row.train_loss:.4f}", f"{row.val_loss:.4f}", f"{row.seconds:.1f}",
                          "best" if row.epoch == summary.best.epoch else "")
    table.caption = (
        f"{summary.train_pairs:,} training / {summary.val_pairs:,} validation pairs"
        f"{f', {summary.skipped:,} skipped' if summary.skipped else ''}; best epoch {summary.best.epoch} "
        f"(validation loss {summary.best.val_loss:.4f}) in best/, resumable state in last/"
    )
    return table


def eval_table(summary: CaptionEvalSummary) -> Table:
    """The generated-vs-reference figures, one per row."""
    table = Table(title="curate caption eval", title_justify="left")
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_row("pairs", f"{summary.pairs:,}" + (f" ({summary.failed} unreadable)" if summary.failed else ""))
    table.add_row("BLEU-4 (corpus, 0-100)", f"{summary.bleu:.2f}")
    table.add_row("METEOR (exact match, 0-1)", f"{summary.meteor:.4f}")
    table.add_row("cosine of sentence embeddings, generated vs reference", f"{summary.cosine:.4f}")
    if summary.alignment is not None:
        table.add_row("alignment, generated prompt with image", f"{summary.alignment:.4f}")
    if summary.reference_alignment is not None:
        table.add_row("alignment, reference prompt with image", f"{summary.reference_alignment:.4f}")
    table.caption = f"text encoder: {summary.text_model}" + (f"; projection: {summary.projection}" if summary.projection else "")
    return table
