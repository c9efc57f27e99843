"""End-of-run tables: what each shard produced, errors by kind, throughput, stage times."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.table import Table

if TYPE_CHECKING:  # annotations only: importing embed would load torch for every command
    from curate.pipelines.dedup import DedupResult
    from curate.pipelines.filter import FilterSummary
    from curate.pipelines.index import IndexResult
    from curate.pipelines.score import ScoreSummary
    from curate.pipelines.train import TrainResult
    from curate.schemas.outcome import StepOutcome
    from curate.schemas.stats import SimilarityStats


def embed_table(summary: StepOutcome) -> Table:
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


def stage_line(summary: StepOutcome) -> str:
    """Where the time went, e.g. `model 80% · read+decode wait 15% · write 5%`."""
    stages = summary.stages
    total = sum(stages.values())
    if total <= 0:
        return ""
    parts = sorted(((k, v) for k, v in stages.items() if v >= 0.05), key=lambda kv: -kv[1])
    return "time: " + " · ".join(f"{name} {secs:.1f}s ({secs / total:.0%})" for name, secs in parts)


def _errors_text(errors: dict[str, int]) -> str:
    if not errors:
        return "0"
    return ", ".join(f"{kind} {count}" for kind, count in sorted(errors.items()))


def filter_table(summary: FilterSummary) -> Table:
    """Scored pairs in, kept, and dropped by the first criterion each failed (they add up)."""
    counts = summary.manifest.counts
    table = Table(title="curate filter", title_justify="left")
    table.add_column("pairs", justify="left")
    table.add_column("count", justify="right")
    table.add_column("share", justify="right")
    rows = [("in (scored)", counts.scored), ("kept", counts.kept), ("dropped", counts.dropped)]
    rows += [(f"  {reason.replace('_', ' ')}", n) for reason, n in counts.dropped_by_reason.items()]
    for label, n in rows:
        table.add_row(label, f"{n:,}", f"{n / counts.scored:.1%}" if counts.scored else "-")
    return table


def train_table(result: TrainResult) -> Table:
    """Held-out metrics of the trained projection (matched pairs vs shuffled captions)."""
    card, m = result.card, result.card.metrics
    table = Table(title=f"curate train: {card.loss} -> {result.out}", title_justify="left")
    table.add_column("validation metric", justify="left")
    table.add_column("value", justify="right")
    rows = [("held-out pairs", f"{m.pairs:,}"), ("ROC-AUC (matched vs shuffled)", f"{m.roc_auc:.4f}")]
    for direction, prefix in (("image->text", "image_to_text"), ("text->image", "text_to_image")):
        rows.append((f"recall@1/5/10 {direction}",
                     " / ".join(f"{getattr(m, f'{prefix}_r{k}'):.3f}" for k in (1, 5, 10))))
    rows.append(("similarity matched", f"{m.matched_mean:.3f} ± {m.matched_std:.3f}"))
    rows.append(("similarity mismatched", f"{m.mismatched_mean:.3f} ± {m.mismatched_std:.3f}"))
    if card.temperature is not None:
        rows.append(("temperature", f"{card.temperature:.4f}"))
    rows.append(("fingerprint", card.fingerprint[:16]))
    for label, value in rows:
        table.add_row(label, value)
    return table


def score_table(summary: ScoreSummary) -> Table:
    """One row per shard plus a total row; shards already scored by this projection say so."""
    card = summary.projection
    caption = f"{card.loss} projection {card.fingerprint[:12]}" if card is not None else None
    table = Table(title="curate score", title_justify="left", caption=caption, caption_justify="left")
    for name, justify in (("shard", "left"), ("rows", "right"), ("rows/s", "right")):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for shard in summary.shards:
        if shard.skipped:
            table.add_row(shard.shard_id, "-", "already scored")
        else:
            table.add_row(shard.shard_id, f"{shard.rows:,}", f"{shard.rows / shard.seconds:,.0f}" if shard.seconds else "-")
    table.add_section()
    table.add_row("total", f"{summary.rows:,}", f"{summary.rows_per_second:,.0f}")
    return table


BAR_WIDTH = 40
EIGHTHS = " ▏▎▍▌▋▊▉"


def bar(value: int, top: int, width: int = BAR_WIDTH) -> str:
    """A unicode bar of `value / top` of `width` cells, in eighths of a cell."""
    eighths = round(8 * width * value / top) if top else 0
    return "█" * (eighths // 8) + (EIGHTHS[eighths % 8] if eighths % 8 else "")


def stats_tables(stats: SimilarityStats) -> list[Table | str]:
    """Summary and quantiles, the histogram as bars, and the pairs each threshold keeps; with the
    run's null beside them when the scores were rated against one."""
    null = stats.null
    summary = Table(title=f"similarity: {stats.files} scores files", title_justify="left")
    summary.add_column("statistic", justify="left")
    summary.add_column("value", justify="right")
    if null is not None:
        summary.add_column(f"null ({null.pairs:,} mismatched pairs)", justify="right")
    summary.add_row("count", f"{stats.count:,}", *([f"{null.pairs:,}"] if null else []))
    named = {"mean": stats.mean, "std": stats.std, "min": stats.min, "max": stats.max, **stats.quantiles}
    theirs = {"mean": null.mean, "std": null.std, "min": null.min, "max": null.max, **null.quantiles} if null else {}
    for name, value in named.items():
        summary.add_row(name, _num(value), *([_num(theirs.get(name))] if null else []))
    tables = [summary, _histogram_table(stats), _kept_table(stats)]
    if null is not None:
        tables.append(f"null: seed {null.seed}, {null.folds} fold(s); pairs whose caption is unrelated to the image: "
                      f"about {null.pi0:.0%} of the run (upper estimate)")
    return tables


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def _histogram_table(stats: SimilarityStats) -> Table:
    hist = Table(title="similarity histogram", title_justify="left", box=None)
    for name, justify in (("range", "left"), ("", "left"), ("pairs", "right")):
        hist.add_column(name, justify=justify)  # type: ignore[arg-type]
    if stats.null is not None:
        hist.add_column("null", justify="right")
    top = max((b.count for b in stats.histogram), default=0)
    nulls = [f"{b.count:,}" for b in stats.null.histogram] if stats.null else []
    for i, b in enumerate(stats.histogram):
        hist.add_row(f"[{b.low:+.3f}, {b.high:+.3f})", bar(b.count, top), f"{b.count:,}", *nulls[i:i + 1])
    return hist


def _kept_table(stats: SimilarityStats) -> Table:
    rated = stats.null is not None
    kept = Table(title="pairs kept by --min-sim" + (" and --max-false-match" if rated else ""), title_justify="left")
    columns = [("threshold", "left"), ("value", "right"), ("kept", "right"), ("share", "right")]
    for name, justify in columns + ([("chance matches among kept", "right")] if rated else []):
        kept.add_column(name, justify=justify)  # type: ignore[arg-type]
    for t in stats.thresholds:
        chance = ["-" if t.chance_share is None else f"{t.chance_share:.1%}"] if rated else []
        kept.add_row(t.label, f"{t.value:.4f}", f"{t.kept:,}", f"{t.fraction:.1%}", *chance)
    return kept


def index_table(result: IndexResult) -> Table:
    """One row per index: kind, search settings, measured recall@10, size, seconds per phase."""
    card = result.card
    note = " (already up to date)" if result.skipped else ""
    table = Table(title=f"curate index: {card.rows:,} rows x {card.dim}-d{note}", title_justify="left")
    for name, justify in (("index", "left"), ("kind", "left"), ("search", "left"), ("recall@10", "right"),
                          ("file", "right"), ("seconds", "left")):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for side, entry in card.indexes.items():
        search = ", ".join(f"{k}={v}" for k, v in entry.search.items()) or "exact"
        phases = " · ".join(f"{k} {entry.seconds[k]:.1f}" for k in ("train", "add", "tune", "write") if k in entry.seconds)
        table.add_row(side, entry.kind, search, f"{entry.recall_at_10:.3f}", f"{entry.file_bytes / 1e6:,.1f} MB", phases)
    table.caption = f"projection pass {card.seconds.get('project', 0.0):.1f}s · total {card.seconds.get('total', 0.0):.1f}s"
    return table


def dedup_table(result: DedupResult) -> Table:
    """Rows, groups, rows marked kept = false, and where the time went."""
    s = result.summary
    note = " (already up to date)" if result.skipped else ""
    table = Table(title=f"curate dedup: cosine >= {s.threshold}{note}", title_justify="left")
    table.add_column("", justify="left")
    table.add_column("value", justify="right")
    rows = [("rows", f"{s.rows:,}"), ("near-duplicate groups", f"{s.groups:,}"), ("marked kept = false", f"{s.dropped:,}"),
            ("kept per group by", s.kept_by), ("index", f"{s.index_kind} (recall@10 {s.index_recall_at_10:.3f})"),
            ("seconds", " · ".join(f"{k} {v:.1f}" for k, v in s.seconds.items()))]
    for label, value in rows:
        table.add_row(label, value)
    return table
