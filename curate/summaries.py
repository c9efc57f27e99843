"""End-of-run tables: what each shard produced, errors by kind, throughput, stage times."""

from __future__ import annotations

from rich.table import Table

from curate.pipelines.embed import EmbedSummary


def embed_table(summary: EmbedSummary) -> Table:
    """One row per shard plus a total row; skipped shards say so."""
    table = Table(title="curate embed", title_justify="left")
    for name, justify in (("shard", "left"), ("pairs", "right"), ("errors", "left"), ("pairs/s", "right")):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for shard in summary.shards:
        if shard.skipped:
            table.add_row(shard.shard_id, "-", "already done", "-")
            continue
        rate = shard.pairs / shard.seconds if shard.seconds else 0.0
        table.add_row(shard.shard_id, f"{shard.pairs:,}", _errors_text(shard.errors), f"{rate:,.1f}")
    table.add_section()
    table.add_row("total", f"{summary.pairs:,}", _errors_text(summary.errors), f"{summary.pairs_per_second:,.1f}")
    return table


def stage_line(summary: EmbedSummary) -> str:
    """Where the time went, e.g. `model 80% · read+decode wait 15% · write 5%`."""
    total = sum(summary.timer.seconds.values())
    if total <= 0:
        return ""
    parts = sorted(summary.timer.seconds.items(), key=lambda kv: -kv[1])
    return "time: " + " · ".join(f"{name} {secs:.1f}s ({secs / total:.0%})" for name, secs in parts)


def _errors_text(errors: dict[str, int]) -> str:
    if not errors:
        return "0"
    return ", ".join(f"{kind} {count}" for kind, count in sorted(errors.items()))
