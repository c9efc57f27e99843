"""`curate report RUN_DIR`: one self-contained HTML page (plus its PNG figures) about a scored run.

Reads only what it shows: aggregates come from DuckDB scans of the similarity column, the
thumbnails from the few source shards that hold the extreme pairs, the map from a sample of
row groups. A run without scores is refused: the report is about what a threshold keeps.
When the scores were rated against a null, the null is drawn beside them and the usual
thresholds get their expected share of chance matches (the same figures `curate stats`
prints); the lowest pairs (`--explain`, 12 by default) show the run's captions their image
lies nearest to (`curate.index.explain`), so a reviewer sees whether caption or image is wrong.
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

import curate.io.formats.registry  # noqa: F401  (fills the reader registry the thumbnails use)
from curate.errors import CurateError
from curate.index.explain import Explanation, explain_pairs
from curate.io.atomic import atomic_path
from curate.io.run_database import RunDatabase
from curate.pipelines.stats import false_match_counts, threshold_counts, threshold_marks, with_chance
from curate.report import figures
from curate.report.chance import RunNull, null_picture, run_null
from curate.report.embedding_map import EmbeddingMap, embedding_map
from curate.report.html import ReportData, render_html
from curate.report.stats import ScoreStats, error_rows, score_stats, stage_rows, table_rows
from curate.report.thumbnails import Pair, attach_thumbnails, extreme_pairs
from curate.schemas.config.flow import StatsConfig
from curate.schemas.config.review import ReportConfig
from curate.schemas.layout import RunLayout
from curate.schemas.projection import CARD_FILE
from curate.schemas.stats import ThresholdCount
from curate.schemas.tables import Table, read_embeddings_info, read_scores_info

log = logging.getLogger("curate")
EXPLAINED_CAPTIONS = 3  # captions shown under each explained pair


@dataclass
class ReportSummary:
    """Where the report went and what it covers."""

    html: Path
    figures: list[Path]
    pairs: int
    thumbnails: int
    seconds: float


def run_report(config: ReportConfig) -> ReportSummary:
    """Gather, draw and write the report of `config.run_dir`."""
    config.validate()
    start = time.perf_counter()
    with RunDatabase(config.run_dir) as db:
        db.require(Table.SCORES)
        data, shown = gather(db, config)
    pngs = write_figures(data.figures, config.html_path)
    with atomic_path(config.html_path) as tmp:
        tmp.write_text(render_html(data), encoding="utf-8")
    seconds = time.perf_counter() - start
    log.info("report of %s pairs written to %s in %.1fs", f"{data.stats.pairs:,}", config.html_path, seconds)
    return ReportSummary(config.html_path, pngs, data.stats.pairs, shown, seconds)


def gather(db: RunDatabase, config: ReportConfig) -> tuple[ReportData, int]:
    """Everything the page shows, and how many thumbnails could be made."""
    stats = score_stats(db, shard_panels=config.shard_panels)
    if stats.pairs == 0:
        raise CurateError(f"{db.layout.table_dir('scores')} holds no scored pairs; nothing to report.")
    errors = error_rows(db)
    extremes = extreme_pairs(db, count=config.thumbnails, pairs=stats.pairs)
    attach_thumbnails(extremes.lowest + extremes.highest, db.layout, px=config.thumbnail_px)
    projections = projections_used(db.layout)
    projection_dir = projections[0]["projection_dir"] if projections else None
    points = embedding_map(db, sample=config.sample, projection_dir=projection_dir, seed=config.seed)
    null = run_null(db)
    drawn = draw(stats, points)
    if null is not None:
        drawn["null"] = figures.null_png(null_picture(db, null))
    explained, explain_note = explain_lowest(config, extremes.lowest[: config.explain])
    data = ReportData(
        run_dir=str(config.run_dir), created=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        stats=stats, extremes=extremes, errors=errors, embeddings_rows=table_rows(db, Table.EMBEDDINGS),
        error_rows=sum(e.count for e in errors), figures=drawn, encoders=encoders_used(db.layout),
        projections=projections, card=read_card_json(projection_dir), map_note=_map_note(points, config.sample),
        notes=_notes(projections), stages=stage_rows(db), chance=chance_rows(db, null, pairs=stats.pairs),
        null_note=NO_NULL, explanations=explained, explain_note=explain_note,
    )
    shown = sum(p.thumbnail is not None for p in extremes.lowest + extremes.highest)
    return data, shown


NO_NULL = ("No null: these scores were not rated against mismatched pairs of the run (scored before "
           "`curate score` drew one, or shards rated against different nulls); rescore with --overwrite.")


def chance_rows(db: RunDatabase, null: RunNull | None, *, pairs: int) -> tuple[ThresholdCount, ...]:
    """The thresholds `curate stats` lists, with the expected share of chance matches among what each keeps."""
    if null is None:
        return ()
    marks = StatsConfig(run_dir=db.layout.root)  # the same marks as `curate stats`, defined once there
    kept = threshold_counts(db, threshold_marks(marks, {}), pairs)
    return with_chance(kept, null, pairs) + false_match_counts(db, null, marks, pairs)


def explain_lowest(config: ReportConfig, lowest: list[Pair]) -> tuple[dict[str, Explanation], str]:
    """What the lowest pairs' images look like, or why the page cannot say (a run without
    embeddings or whose projection is gone still gets its report)."""
    if not lowest:
        return {}, ""
    try:
        explained = explain_pairs(config.run_dir, [p.key for p in lowest], k=EXPLAINED_CAPTIONS, device="cpu")
    except CurateError as exc:
        log.info("no explanations in the report: %s", exc)  # the page says why; not a problem with the run
        return {}, f"No explanations: {exc}"
    space = next(iter(explained.values())).space
    return explained, (f"Under each of the {len(explained)} lowest pairs, the run's captions its image lies nearest "
                       f"to (searched: {space}): if they describe the picture, its own caption is wrong.")


def draw(stats: ScoreStats, points: EmbeddingMap | None) -> dict[str, bytes]:
    """The PNG figures by name; the optional ones are absent when there is nothing to draw."""
    drawn = {"histogram": figures.histogram_png(stats), "sweep": figures.sweep_png(stats)}
    shards = figures.shard_histograms_png(stats)
    if shards is not None:
        drawn["shards"] = shards
    if points is not None:
        drawn["map"] = figures.map_png(points)
    return drawn


def write_figures(pngs: dict[str, bytes], html_path: Path) -> list[Path]:
    """`<stem>-<name>.png` beside the HTML, so two reports in one folder never clash."""
    written = []
    for name, png in pngs.items():
        path = html_path.with_name(f"{html_path.stem}-{name}.png")
        with atomic_path(path) as tmp:
            tmp.write_bytes(png)
        written.append(path)
    return written


def encoders_used(layout: RunLayout) -> list[dict[str, Any]]:
    """The distinct encoders named in the embeddings files' metadata (normally one per side)."""
    seen: dict[str, dict[str, Any]] = {}
    for path in layout.shard_files(Table.EMBEDDINGS):
        try:
            info = read_embeddings_info(pq.read_schema(path))
        except (KeyError, TypeError, ValueError, OSError):
            continue
        for encoder in (info.image_encoder, info.text_encoder):
            seen.setdefault(encoder.signature(), asdict(encoder))
    return list(seen.values())


def projections_used(layout: RunLayout) -> list[dict[str, str]]:
    """Projection fingerprints named by the scores files, the most used first."""
    counts: Counter = Counter()
    for path in layout.shard_files(Table.SCORES):
        try:
            info = read_scores_info(pq.read_schema(path))
        except (KeyError, TypeError, ValueError, OSError):
            continue
        counts[(info.projection, info.projection_dir)] += 1
    return [
        {"projection": fingerprint, "projection_dir": folder, "shards": str(n)}
        for (fingerprint, folder), n in counts.most_common()
    ]


def read_card_json(projection_dir: str | None) -> dict[str, Any] | None:
    """The projection card as plain JSON (shown field by field), or None when absent or unreadable."""
    if not projection_dir:
        return None
    path = Path(projection_dir) / CARD_FILE
    try:
        card = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return card if isinstance(card, dict) else None


def _notes(projections: list[dict[str, str]]) -> list[str]:
    if len(projections) > 1:
        return [f"The scores come from {len(projections)} different projections; compare shards with care."]
    return []


def _map_note(points: EmbeddingMap | None, sample: int) -> str:
    if points is None:
        return "No map: too few embedded and scored pairs to sample." if sample else "No map (--sample 0)."
    return (
        f"{len(points.xy):,} pairs sampled by whole row groups (at most --sample {sample:,}); "
        f"axes are the first two principal components of {points.space}."
    )
