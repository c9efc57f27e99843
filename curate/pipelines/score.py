"""`curate score`: embeddings + a projection -> `scores/<shard-id>.parquet`, resumable.

First the run's null distribution is drawn (or found): mismatched pairs of the run scored
like its pairs (`curate.pipelines.null`). Then, per shard, the embeddings file is streamed a
batch at a time through the projection (or, for a projection trained with `--folds`, each
pair through the fold projection that never saw it) and the similarities, any further
scores the projection gives (SigLIP's match probability under `--projection native`) and
each pair's `false_match_rate` against the null are written beside the key, caption and
meta columns through the atomic Parquet writer. A scores file made by the same projection
(same weights fingerprint) against the same null, holding as many rows as its embeddings and
the run's columns is complete: a rerun skips it; one made by another projection, or before
the run's null changed (a shard was added), is rescored. `--overwrite` redraws the null and
rescores everything (it never re-embeds). Shards are scored by `ScoreWorker`s run by the
executor `--executor` names (local or Ray). Every scores file of the run gets the run's
columns (`pipelines/score_columns.py`), so the run reads as one table.
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
from curate.io.run_lock import hold
from curate.io.stats_files import write_outcome
from curate.io.tables import ParquetTableWriter, table_footer
from curate.models.devices import resolve_device
from curate.models.folds import PairScorer, load_scorer
from curate.models.projection import projection_from_card
from curate.pipelines.null import NON_FINITE_SCORE, NullDistribution, null_for
from curate.pipelines.score_columns import run_meta, widen_others
from curate.pipelines.score_inputs import collect_embeddings, scoring_projection
from curate.runtime.executors import make_executor
from curate.runtime.jobs import ShardJob
from curate.schemas.arrow_schemas import meta_of, scores_columns, scores_schema
from curate.schemas.config.flow import ScoreConfig
from curate.schemas.layout import RunLayout, TableFile
from curate.schemas.outcome import ShardOutcome, StepOutcome
from curate.schemas.projection import ProjectionCard
from curate.schemas.tables import FALSE_MATCH_RATE, ScoresInfo, Table, read_scores_info
from curate.versions import library_versions

log = logging.getLogger("curate")
STEP = "score"


@dataclass
class ScoreSummary(StepOutcome):
    """The step's outcome and the projection that scored it (for the end-of-run table)."""

    projection: ProjectionCard | None = None


def up_to_date(scores: Location, embeddings: Location, card: ProjectionCard, null: NullDistribution,
               columns: pa.Schema) -> bool:
    """Same projection fingerprint, same null, as many rows as the embeddings and the run's
    `columns`: nothing to redo."""
    if not scores.exists():
        return False
    try:
        footer = table_footer(scores)
        schema = footer.schema.to_arrow_schema()
        info = read_scores_info(schema)
    except (KeyError, TypeError, ValueError, pa.ArrowInvalid, OSError):
        return False
    same_null = info.null is not None and info.null.digest == null.info.digest
    return (info.projection == card.fingerprint and same_null and footer.num_rows == row_count(embeddings)
            and schema.remove_metadata().equals(columns))


def scores_info_for(embeddings: Path, config: ScoreConfig, card: ProjectionCard, null: NullDistribution) -> ScoresInfo:
    """Source and format come from the embeddings so `filter` can re-read the original images."""
    info = embeddings_info(embeddings)
    return ScoresInfo(
        shard_id=embeddings.stem, source=info.source, format=info.format, projection=card.fingerprint,
        projection_dir=str(config.projection.resolve()), versions=library_versions(), columns=info.columns,
        null=null.info,
    )


def batch_scores(scorer: PairScorer, null: NullDistribution, batch: pa.RecordBatch) -> tuple[dict[str, pa.Array], int]:
    """float32 similarities of one batch, with non-finite ones (overflowed vectors) floored, the
    projection's further scores of them (SigLIP's match probability) and their false-match rates."""
    keys = batch.column("key").to_pylist()
    sims = scorer.similarity(keys, vectors(batch.column("image_emb")), vectors(batch.column("text_emb")))
    bad = ~np.isfinite(sims)
    sims[bad] = NON_FINITE_SCORE
    columns = {name: pa.array(values, type=pa.float32())
               for name, values in {"similarity": sims, **scorer.extra_scores(sims)}.items()}
    columns[FALSE_MATCH_RATE] = pa.array(null.rates(scorer.fold_of(keys), sims), type=pa.float64())
    return columns, int(bad.sum())


def score_shard(embeddings: Path, *, scorer: PairScorer, null: NullDistribution, card: ProjectionCard,
                config: ScoreConfig, advance: Callable[[int], None], meta: pa.Schema | None = None) -> ShardOutcome:
    """Stream one embeddings file into its scores file, published only when complete (stats file
    first). `meta` is the run's meta columns (default: this file's own)."""
    start = time.perf_counter()
    layout = RunLayout(config.out)
    present = pq.read_schema(embeddings)
    schema = scores_schema(scores_info_for(embeddings, config, card, null), meta_of(present) if meta is None else meta,
                           extra=scorer.extra_score_names, rated=True)
    scored = ("similarity", *scorer.extra_score_names, FALSE_MATCH_RATE)
    kept = [name for name in schema.names if name not in scored and name in present.names]
    writer = ParquetTableWriter(layout.scores(embeddings.stem), schema)
    outcome = ShardOutcome(STEP, embeddings.stem, counts={"non_finite": 0})
    try:
        for batch in iter_batches(embeddings, columns=kept + ["image_emb", "text_emb"]):
            columns = {name: batch.column(name) for name in kept}
            scores, bad = batch_scores(scorer, null, batch)
            columns.update(scores)
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
    """The worker entry point executors drive: builds the projection `card` names (or its fold
    projections) in its own process and scores a local copy of an embeddings file that lives at
    a URL; the null travels with the builder (a few thousand floats)."""

    def __init__(self, config: ScoreConfig, card: ProjectionCard, null: NullDistribution,
                 meta: pa.Schema | None = None) -> None:
        self.config, self.card, self.null, self.meta = config, card, null, meta
        device = resolve_device(config.device)
        self.device = str(device)
        self.scorer = load_scorer(config.projection, card, device=device)
        self.mirror = ShardMirror()

    def run(self, shard: TableFile, advance: Callable[[int], None], upcoming: TableFile | None = None) -> ShardOutcome:
        with self.mirror.local(shard) as local:
            self.mirror.prefetch(upcoming)
            return score_shard(local.path, scorer=self.scorer, null=self.null, card=self.card, config=self.config,
                               advance=advance, meta=self.meta)

    def close(self) -> None:
        """Delete local copies; the projection goes with the process."""
        self.mirror.close()


def run_score(config: ScoreConfig, *, quiet: bool = False) -> ScoreSummary:
    """Score every input's embeddings with the projection, skipping shards already scored by it."""
    config.validate()
    config = with_locations(config, "inputs", "out")
    check_backend(config.out)
    with hold(config.out, STEP) as since:  # one writer per run (the embedding of new shards runs inside)
        config, card = scoring_projection(config)
        files = collect_embeddings(config, card, quiet=quiet)
        _remove_stale_tmp(RunLayout(config.out), settled_before=since)
        null = run_null(config, card, files)
        return _score(config, card, files, null, quiet=quiet)


def run_null(config: ScoreConfig, card: ProjectionCard, files: list[Location]) -> NullDistribution:
    """The run's null for this projection (found, or drawn and written now)."""
    scorer = load_scorer(config.projection, card, device=resolve_device(config.device))
    return null_for(files, scorer, scoring=card.scoring_fingerprint, layout=RunLayout(config.out),
                    size=config.null_pairs, seed=config.null_seed, overwrite=config.overwrite)


def _score(config: ScoreConfig, card: ProjectionCard, files: list[Location], null: NullDistribution, *,
           quiet: bool) -> ScoreSummary:
    layout = RunLayout(config.out)
    remote = is_url(layout.root) or any(is_url(f) for f in files)
    meta = run_meta(files, layout, remote=remote)
    widen_others(layout, files, meta, remote=remote)
    columns = scores_columns(meta, extra=extra_score_names(config, card), rated=True)
    current = io_map(lambda f: not config.overwrite and up_to_date(layout.scores(f.stem), f, card, null, columns),
                     files, remote=remote)
    todo = [f for f, current_ in zip(files, current) if not current_]
    results = [ShardOutcome(STEP, f.stem, skipped=True) for f in files if f not in todo]
    if results:
        log.info("%d of %d shards already scored by this projection; skipping them", len(results), len(files))
    seconds = 0.0
    if todo:
        items = [TableFile(shard_id=f.stem, path=f) for f in todo]
        job = ShardJob(items, partial(ScoreWorker, config, card, null, meta), label=STEP, unit="rows",
                       total=sum(io_map(row_count, todo, remote=remote)), quiet=quiet)
        outcome = make_executor(config.executor).run(job)
        _remove_stale_tmp(layout, settled_before=time.time())  # what workers killed mid-shard left behind
        results, seconds = results + outcome.results, outcome.seconds
    results.sort(key=lambda r: r.shard_id)
    return ScoreSummary(STEP, results, seconds, projection=card)


def extra_score_names(config: ScoreConfig, card: ProjectionCard) -> tuple[str, ...]:
    """The further score columns this projection writes (built on the CPU: a card and a few weights)."""
    return projection_from_card(card, config.projection, device=resolve_device("cpu")).extra_score_names


def _remove_stale_tmp(layout: RunLayout, *, settled_before: float) -> None:
    for folder in (layout.table_dir(Table.SCORES), layout.stats_dir(STEP), layout.null_dir):
        remove_stale_tmp(folder, settled_before=settled_before)
