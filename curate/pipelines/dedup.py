"""`curate dedup`: groups of near-duplicate images, one kept per group -> `RUN_DIR/dedup/`.

Every image's projected vector is searched in the image index (k nearest); pairs whose
cosine is at or above the threshold become edges, and connected components of those
edges are the groups. In each group the best-aligned pair (highest `similarity` in
`scores/`) is kept; without scores, the first in run order. The image vectors come from
the projection the index was built with (docs/index.md explains why projected rather
than raw encoder vectors). `filter --dedup` drops the rows marked `kept = false`.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from curate.errors import CurateError
from curate.index.groups import connected_components, group_sizes
from curate.index.store import BuiltIndex, dedup_table
from curate.io.atomic import atomic_dir, remove_stale_dirs, write_json_atomic
from curate.io.run_lock import hold
from curate.io.embeddings import embeddings_files, iter_batches, vectors
from curate.io.tables import ParquetTableWriter
from curate.models.projection import Projection
from curate.runtime.timing import StageTimer
from curate.schemas.config.vectors import DedupConfig
from curate.schemas.index import (
    DEDUP_FILE,
    DEDUP_SCHEMA,
    DEDUP_SUMMARY_FILE,
    DedupSummary,
)
from curate.schemas.layout import RunLayout
from curate.schemas.tables import Table
from curate.versions import library_versions

log = logging.getLogger("curate")
QUERY_ROWS = 8192  # image vectors searched per batch
SPACE = "projected"


@dataclass
class DedupResult:
    """The summary, and whether an up-to-date dedup table was already there."""

    summary: DedupSummary
    skipped: bool = False


def near_pairs(files: list[Path], projection: Projection, index: Any, *, threshold: float, k: int,
               advance: Callable[[int], None]) -> tuple[np.ndarray, np.ndarray]:
    """(left, right) ids of every pair whose cosine is >= threshold among each image's k nearest."""
    lefts, rights, first = [], [], 0
    for path in files:
        for batch in iter_batches(path, columns=["image_emb"], rows=QUERY_ROWS):
            query = projection.project_image(vectors(batch.column(0)).astype(np.float32))
            sims, ids = index.search(query, k + 1)  # +1: the image itself is usually its first hit
            own = np.arange(first, first + len(query))[:, None]
            rows, cols = np.nonzero((sims >= threshold) & (ids >= 0) & (ids != own))
            lefts.append(own[rows, 0])
            rights.append(ids[rows, cols])
            first += len(query)
            advance(len(query))
        pa.default_memory_pool().release_unused()  # the Parquet reader's buffers, kept by the allocator
    return np.concatenate(lefts or [np.zeros(0, np.int64)]), np.concatenate(rights or [np.zeros(0, np.int64)])


def alignment_of(run_dir: Path, keys: list[str]) -> np.ndarray | None:
    """`similarity` from scores/ for `keys` (NaN where unscored), or None when the run has no scores."""
    files = RunLayout(run_dir).shard_files(Table.SCORES)
    if not files:
        return None
    wanted, found = pa.array(keys, pa.string()), {}
    for path in files:
        table = pq.read_table(path, columns=["key", "similarity"])
        table = table.filter(pc.is_in(table.column("key"), value_set=wanted))
        found.update(zip(table.column("key").to_pylist(), table.column("similarity").to_pylist()))
    return np.array([found.get(key, np.nan) for key in keys], dtype=np.float64)


def choose_kept(labels: np.ndarray, members: np.ndarray, alignment: np.ndarray | None) -> np.ndarray:
    """kept flags for all rows: singletons kept; in each group the best-aligned member (ties: lowest id)."""
    kept = np.ones(len(labels), dtype=bool)
    if len(members) == 0:
        return kept
    score = np.zeros(len(members)) if alignment is None else np.nan_to_num(alignment, nan=-np.inf)
    order = np.lexsort((members, -score, labels[members]))
    groups = labels[members][order]
    first = np.r_[True, groups[1:] != groups[:-1]]
    kept[members] = False
    kept[members[order][first]] = True
    return kept


def write_dedup(folder: Path, ids: pa.Table, labels: np.ndarray, kept: np.ndarray, summary: DedupSummary) -> None:
    """dedup.parquet (one row per indexed pair) then summary.json, into `folder`."""
    writer = ParquetTableWriter(folder / DEDUP_FILE, DEDUP_SCHEMA)
    writer.write_rows({
        "key": ids.column("key"), "shard": ids.column("shard"), "group": pa.array(labels),
        "group_size": pa.array(group_sizes(labels).astype(np.int32)), "kept": pa.array(kept),
    })
    writer.close()
    write_json_atomic(folder / DEDUP_SUMMARY_FILE, summary.to_json())


def read_summary(folder: Path) -> DedupSummary | None:
    """The summary of a finished dedup (written last), None when there is none or it is unreadable."""
    path = folder / DEDUP_SUMMARY_FILE
    if not path.is_file():
        return None
    try:
        return DedupSummary.from_json(json.loads(path.read_text()))
    except (ValueError, TypeError):
        return None


def up_to_date(existing: DedupSummary | None, built: BuiltIndex, config: DedupConfig) -> bool:
    """Same threshold and k over the same embeddings and projection: nothing to redo."""
    return existing is not None and (
        existing.threshold == config.threshold and existing.neighbours == config.neighbours
        and existing.embeddings_fingerprint == built.card.embeddings_fingerprint
        and existing.projection_fingerprint == built.card.projection_fingerprint
    )


def run_dedup(config: DedupConfig, *, quiet: bool = False) -> DedupResult:
    """Find the groups, choose the kept rows, write `RUN_DIR/dedup/` atomically."""
    config.validate()
    with hold(config.run_dir, "dedup", option="RUN_DIR"):  # one writer per run
        built = BuiltIndex.open(config.run_dir)
        files = embeddings_files(config.run_dir)
        built.check_current(files)
        return _dedup(config, built, files, quiet=quiet)


def _dedup(config: DedupConfig, built: BuiltIndex, files: list[Path], *, quiet: bool) -> DedupResult:
    folder = RunLayout(config.run_dir).dedup_dir
    existing = read_summary(folder)
    if not config.overwrite and up_to_date(existing, built, config):
        log.info("%s is up to date; pass --overwrite to redo it", folder)
        return DedupResult(existing, skipped=True)  # type: ignore[arg-type]
    remove_stale_dirs(folder)
    summary, ids, labels, kept = find_duplicates(config, built, files, quiet=quiet)
    with atomic_dir(folder) as staging:
        write_dedup(staging, ids, labels, kept, summary)
    log.info("%d groups of near-duplicates; %d of %d rows marked kept = false", summary.groups, summary.dropped, summary.rows)
    return DedupResult(summary)


def find_duplicates(config: DedupConfig, built: BuiltIndex, files: list[Path], *,
                    quiet: bool) -> tuple[DedupSummary, pa.Table, np.ndarray, np.ndarray]:
    """The k-NN pass, the grouping and the choice of the kept rows, timed phase by phase."""
    from curate.console import make_progress

    timer, rows = StageTimer(), built.card.rows
    with timer.stage("load"):
        projection = built.projection()
        index, _ = built.load("image", device=config.device)
        ids = built.ids(["key", "shard"])
    if ids.num_rows != rows:
        raise CurateError(f"{built.folder / 'ids.parquet'} does not match the index card; rebuild with `curate index --overwrite`.")
    with timer.stage("search"), make_progress(unit="images", quiet=quiet) as progress:
        task = progress.add_task("dedup", total=rows)
        left, right = near_pairs(files, projection, index, threshold=config.threshold, k=config.neighbours,
                                 advance=lambda n: progress.advance(task, n))
    del index
    with timer.stage("group"):
        labels = connected_components(rows, left, right)
        members = np.flatnonzero(group_sizes(labels) > 1)
    with timer.stage("choose"):
        alignment = alignment_of(config.run_dir, ids.column("key").take(pa.array(members)).to_pylist()) if len(members) else None
        kept = choose_kept(labels, members, alignment)
    summary = DedupSummary(
        rows=rows, groups=int(len(np.unique(labels[members]))), dropped=int((~kept).sum()), threshold=config.threshold,
        neighbours=config.neighbours, space=SPACE, kept_by="first key" if alignment is None else "similarity",
        index_kind=built.card.indexes["image"].kind, index_recall_at_10=built.card.indexes["image"].recall_at_10,
        projection_fingerprint=built.card.projection_fingerprint, embeddings_fingerprint=built.card.embeddings_fingerprint,
        seconds={k: round(v, 3) for k, v in timer.seconds.items()}, versions=library_versions(),
    )
    return summary, ids, labels, kept


def dedup_dropped_keys(run_dir: Path) -> dict[str, set[str]]:
    """shard id -> keys that `curate dedup` marked kept = false (what `filter --dedup` drops)."""
    table = pq.read_table(dedup_table(run_dir), columns=["key", "shard", "kept"], filters=[("kept", "=", False)])
    dropped: dict[str, set[str]] = {}
    for key, shard in zip(table.column("key").to_pylist(), table.column("shard").to_pylist()):
        dropped.setdefault(shard, set()).add(key)
    return dropped
