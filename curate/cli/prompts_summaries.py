"""The `curate prompts` result tables (rich), kept apart from the pipelines that fill them."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.table import Table

if TYPE_CHECKING:  # annotations only: the pipelines import torch
    from curate.prompt_lms.card import PrepareReport
    from curate.prompt_lms.eval import EvalResult
    from curate.prompt_lms.train import TrainSummary


def prepare_table(report: PrepareReport) -> Table:
    """Rows read, kept per split, and removed per reason: the counts add up to `read`."""
    table = Table(title="curate prompts prepare", title_justify="left")
    table.add_column("")
    table.add_column("prompts", justify="right")
    table.add_row("read", f"{report.read:,}")
    for split, count in report.kept.items():
        table.add_row(f"kept: {split}", f"{count:,}")
    for reason, count in sorted(report.removed.items()):
        table.add_row(f"removed: {reason}", f"{count:,}")
    for source, count in sorted(report.plain_sources.items()):
        table.add_row(f"plain versions {source}", f"{count:,}")
    return table


def train_table(summary: TrainSummary) -> Table:
    card = summary.card
    table = Table(title=f"curate prompts train {card.recipe}", title_justify="left")
    table.add_column("")
    table.add_column("value", justify="right")
    loss = f"{card.best_validation_loss:.4f}" if card.best_validation_loss is not None else "-"
    source = {"local": " (local folder)", "hub": " (hub id)"}.get(card.base_source, "")
    base = card.base + source
    rows = [("model folder", str(summary.out)), ("base", base), ("epochs run", str(card.epochs_run)),
            ("best epoch", str(card.best_epoch)), ("best validation loss", loss),
            ("trainable parameters", f"{summary.trainable_params:,} of {summary.total_params:,}"),
            ("train / validation prompts", f"{summary.train_rows:,} / {summary.validation_rows:,}"),
            ("precision", card.precision)]
    rows += [(name.replace("_", " "), f"{value:.4f}") for name, value in card.metrics.items() if name != "validation_loss"]
    for name, value in rows:
        table.add_row(name, value)
    return table


def eval_table(result: EvalResult) -> Table:
    table = Table(title=f"curate prompts eval ({result.recipe}: {result.inputs} inputs, {result.generations} generations)",
                  title_justify="left")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for name, value in result.metrics.items():
        table.add_row(name.replace("_", " "), f"{value:.4f}")
    return table
