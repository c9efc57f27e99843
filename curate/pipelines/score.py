"""`curate score`: embeddings + a projection -> `scores/<shard-id>.parquet`, resumable.

Per shard, the embeddings file is streamed a batch at a time through the projection and the
similarities are written beside the key, caption and meta columns through the atomic
Parquet writer. A scores file made by the same projection (same weights fingerprint) and
holding as many rows as its embeddings is complete: a rerun skips it; one made by another
projection is rescored. `--overwrite` rescores everything (it never re-embeds).
Shards are scored by `ScoreWorker`s run by the executor `--executor` names (local or Ray).

Every scores file of a run has the same columns, in the same order, with the same types:
the meta columns of all its shards unified (`unified_meta`), nulls where a source lacks
one. So DuckDB, pyarrow datasets, pandas, polars and `datasets` read `RUN_DIR/scores/` as
one table. A scores file whose columns differ from the run's is rescored (its shard is in
this run's inputs) or widened in place (it is not): nothing is ever re-embedded.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Callable

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from curate.io.atomic import remove_stale_tmp
from curate.io.embeddings import embeddings_info, iter_batches, row_count, vectors
from curate.io.location import Location, check_backend, io_map, is_url, with_locations
from curate.io.mirror import ShardMirror
from curate.io.stats_files import write_outcome
from curate.io.tables import ParquetTableWriter, read_table, table_footer, table_schema
from curate.models.devices import resolve_device
from curate.models.projection import Projection, load_projection
from curate.pipelines.score_inputs import collect_embeddings
from curate.runtime.executors import make_executor
from curate.runtime.jobs import ShardJob
from curate.schemas.arrow_schemas import meta_of, scores_columns, scores_schema, unified_meta
from curate.schemas.config.flow import ScoreConfig
from curate.schemas.layout import RunLayout, TableFile
from curate.schemas.outcome import ShardOutcome, StepOutcome
from curate.schemas.projection import ProjectionCard
from curate.schemas.tables import ScoresInfo, Table, read_scores_info
from curate.versions import library_versions

log = logging.getLogger("curate")
STEP = "score"
NON_FINITE_SCORE = -1.0  # the lowest cosine: no --min-sim keeps a pair whose vectors overflowed


@dataclass
class ScoreSummary(StepOutcome):
    """The step's outcome and the projection that scored it (for the end-of-run table)."""

    projection: ProjectionCard | None = None


def up_to_date(scores: Location, embeddings: Location, card: ProjectionCard, meta: pa.Schema) -> bool:
    """Same projection fingerprint, as many rows as the embeddings and the run's columns: nothing to redo."""
    if not scores.exists():
        return False
    try:
        footer = table_footer(scores)
        schema = footer.schema.to_arrow_schema()
        info = read_scores_info(schema)
    except (KeyError, TypeError, ValueError, pa.ArrowInvalid, OSError):
        return False
    return (info.projection == card.fingerprint and footer.num_rows == row_count(embeddings)
            and schema.remove_metadata().equals(scores_columns(meta)))


def run_meta(files: list[Location], layout: RunLayout, *, remote: bool) -> pa.Schema:
    """The meta columns every scores file of the run gets: those of the embeddings being scored
    and of the run's other scores files, unified in shard-id order (so the columns' order does
    not depend on the order the inputs were given in)."""
    scored = {f.stem for f in files}
    others = [p for p in layout.shard_files(Table.SCORES) if p.stem not in scored]
    tables = sorted(files + others, key=lambda path: path.stem)
    meta, _ = unified_meta(meta_of(schema) for schema in io_map(table_schema, tables, remote=remote))
    return meta


def widen_scores(path: Location, meta: pa.Schema) -> bool:
    """Rewrite a scores file with the run's columns (nulls for the ones it lacks), keeping its
    rows and metadata; False when it already has them."""
    table = read_table(path)
    want = scores_columns(meta)
    if table.schema.remove_metadata().equals(want):
        return False
    writer = ParquetTableWriter(path, want.with_metadata(table.schema.metadata))
    try:
        writer.write_rows({name: table.column(name) for name in table.column_names if name in want.names})
        writer.close()
    except BaseException:
        writer.abort()
        raise
    return True


def scores_info_for(embeddings: Path, config: ScoreConfig, card: ProjectionCard) -> ScoresInfo:
    """Source and format come from the embeddings so `filter` can re-read the original images."""
    info = embeddings_info(embeddings)
    return ScoresInfo(
        shard_id=embeddings.stem, source=info.source, format=info.format, projection=card.fingerprint,
        projection_dir=str(config.projection.resolve()), versions=library_versions(), columns=info.columns,
    )


def batch_similarity(model: Projection, batch: pa.RecordBatch) -> tuple[pa.Array, int]:
    """float32 similarities of one batch, with non-finite ones (overflowed vectors) floored."""
    sims = model.similarity(vectors(batch.column("image_emb")), vectors(batch.column("text_emb")))
    bad = ~np.isfinite(sims)
    sims[bad] = NON_FINITE_SCORE
    return pa.array(sims, type=pa.float32()), int(bad.sum())


def score_shard(embeddings: Path, *, model: Projection, card: ProjectionCard, config: ScoreConfig,
                advance: Callable[[int], None], meta: pa.Schema | None = None) -> ShardOutcome:
    """Stream one embeddings file into its scores file, published only when complete (stats file
    first). `meta` is the run's meta columns (default: this file's own)."""
    start = time.perf_counter()
    layout = RunLayout(config.out)
    present = pq.read_schema(embeddings)
    schema = scores_schema(scores_info_for(embeddings, config, card), meta_of(present) if meta is None else meta)
    kept = [name for name in schema.names if name != "similarity" and name in present.names]
    writer = ParquetTableWriter(layout.scores(embeddings.stem), schema)
    outcome = ShardOutcome(STEP, embeddings.stem, counts={"non_finite": 0})
    try:
        for batch in iter_batches(embeddings, columns=kept + ["image_emb", "text_emb"]):
            columns = {name: batch.column(name) for name in kept}
            columns["similarity"], bad = batch_similarity(model, batch)
            writer.write_rows(columns)
            outcome.rows += batch.num_rows
            outcome.counts["non_finite"] += bad
            advance(batch.num_rows)
        outcome.seconds = time.perf_counter() - start
        outcome.stages = {"score": outcome.seconds}
        write_outcome(layout, outcome)
        writer.close()
    except BaseException:
        writer.abort()
        raise
    if outcome.counts["non_finite"]:
        log.warning("%s: %d pairs had non-finite vectors; scored %s", embeddings.stem, outcome.counts["non_finite"],
                    NON_FINITE_SCORE)
    return outcome


class ScoreWorker:
    """The worker entry point executors drive: loads the projection in its own process and
    scores a local copy of an embeddings file that lives at a URL."""

    def __init__(self, config: ScoreConfig, meta: pa.Schema | None = None) -> None:
        self.config, self.meta = config, meta
        self.model, self.card = load_projection(config.projection, device=resolve_device(config.device))
        self.mirror = ShardMirror()

    def run(self, shard: TableFile, advance: Callable[[int], None], upcoming: TableFile | None = None) -> ShardOutcome:
        with self.mirror.local(shard) as local:
            self.mirror.prefetch(upcoming)
            return score_shard(local.path, model=self.model, card=self.card, config=self.config, advance=advance,
                               meta=self.meta)

    def close(self) -> None:
        """Delete local copies; the projection goes with the process."""
        self.mirror.close()


def run_score(config: ScoreConfig, *, quiet: bool = False) -> ScoreSummary:
    """Score every input's embeddings with the projection, skipping shards already scored by it."""
    config.validate()
    config = with_locations(config, "inputs", "out")
    check_backend(config.out)
    _, card = load_projection(config.projection, device=resolve_device(config.device))  # refuse a bad one early
    files = collect_embeddings(config, card, quiet=quiet)
    layout = RunLayout(config.out)
    _remove_stale_tmp(layout)
    remote = is_url(layout.root) or any(is_url(f) for f in files)
    meta = run_meta(files, layout, remote=remote)
    _widen_others(layout, files, meta, remote=remote)
    current = io_map(lambda f: not config.overwrite and up_to_date(layout.scores(f.stem), f, card, meta), files,
                     remote=remote)
    todo = [f for f, current_ in zip(files, current) if not current_]
    results = [ShardOutcome(STEP, f.stem, skipped=True) for f in files if f not in todo]
    if results:
        log.info("%d of %d shards already scored by this projection; skipping them", len(results), len(files))
    seconds = 0.0
    if todo:
        items = [TableFile(shard_id=f.stem, path=f) for f in todo]
        job = ShardJob(items, partial(ScoreWorker, config, meta), label=STEP, unit="rows",
                       total=sum(io_map(row_count, todo, remote=remote)), quiet=quiet)
        outcome = make_executor(config.executor).run(job)
        _remove_stale_tmp(layout)  # what workers killed mid-shard left behind
        results, seconds = results + outcome.results, outcome.seconds
    results.sort(key=lambda r: r.shard_id)
    return ScoreSummary(STEP, results, seconds, projection=card)


def _widen_others(layout: RunLayout, files: list[Location], meta: pa.Schema, *, remote: bool) -> None:
    """Give the run's scores files this run does not rescore the run's columns."""
    scored = {f.stem for f in files}
    others = [p for p in layout.shard_files(Table.SCORES) if p.stem not in scored]
    widened = sum(io_map(lambda path: widen_scores(path, meta), others, remote=remote))
    if widened:
        log.info("%d scores files of shards not scored now got the run's new meta columns (nulls)", widened)


def _remove_stale_tmp(layout: RunLayout) -> None:
    for folder in (layout.table_dir(Table.SCORES), layout.stats_dir(STEP)):
        remove_stale_tmp(folder)
