"""`curate filter`: a scored run -> a subset of its pairs, with their original image bytes.

Selection is DuckDB's job (`curate.subsets.selection`): it counts kept and dropped pairs per
scores file and hands over one shard's kept keys at a time. Each scored shard's source (named
in its scores file's metadata) is then re-read and the kept samples are copied, bytes
untouched, through the registered writer of the output format, with `similarity` added
beside the meta: by the fastest way registered for the pair of formats
(`curate.subsets.copying`: Arrow for Parquet to Parquet, members read in place for tar to
tar), else sample by sample through the source's reader. Output shards are rolled every
`--shard-size` samples; `manifest.json` is written last and marks the subset complete.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable

import pyarrow as pa
import pyarrow.parquet as pq

from curate.errors import CurateError
from curate.io.formats.base import Shard, ShardReader, lookup
from curate.io.formats.registry import READERS, WRITERS, sidecars_of
from curate.io.location import location
from curate.io.mirror import ShardMirror
from curate.io.run_lock import hold
from curate.io.safety import SHARD_ERRORS
from curate.schemas.arrow_schemas import unified_meta
from curate.schemas.config.flow import ColumnsConfig, FilterConfig
from curate.schemas.layout import RunLayout
from curate.schemas.manifest import (
    DROP_REASONS,
    KEPT,
    FilterCounts,
    ScoresInput,
    SubsetManifest,
)
from curate.schemas.tables import ScoresInfo, Table, read_scores_info
from curate.subsets.copying import Advance, copy_for
from curate.subsets.output import (
    ShardRoller,
    finish_subset_dir,
    plan_fingerprint,
    prepare_subset_dir,
)
from curate.subsets.recipes import check_columns, recipe_named
from curate.subsets.selection import (
    ScoresDatabase,
    Selection,
    build_selection,
    kept_table,
    outcomes_by_file,
)
from curate.versions import library_versions

log = logging.getLogger("curate")
CRITERIA_OPTIONS = ("min_sim", "max_sim", "max_false_match", "top_fraction", "recipe", "where", "dedup")


@dataclass(frozen=True)
class ScoredShard:
    """One scores file, the source shard it points back to, and what the criteria made of it."""

    scores: Path
    info: ScoresInfo
    outcomes: Counter

    @property
    def rows(self) -> int:
        return sum(self.outcomes.values())

    @property
    def kept(self) -> int:
        return self.outcomes[KEPT]

    @property
    def source(self) -> Shard:
        """The source shard (a path or a URL), with the shard id the scores were made under (same keys)."""
        return Shard(path=location(self.info.source), format=self.info.format, shard_id=self.info.shard_id,
                     columns=ColumnsConfig(**self.info.columns))

    def reader(self, local: Shard | None = None) -> ShardReader:
        """A reader of the source, or of `local`, its local copy (what iterating a URL source needs)."""
        return lookup(READERS, self.info.format, "format")(local or self.source)


@dataclass
class FilterSummary:
    """The manifest written, plus how the run went (for the summary table and benchmarks)."""

    manifest: SubsetManifest
    seconds: float
    records_read: int
    reused_outputs: int

    @property
    def rows_per_second(self) -> float:
        return self.manifest.counts.scored / self.seconds if self.seconds > 0 else 0.0


def run_filter(config: FilterConfig, *, quiet: bool = False) -> FilterSummary:
    """Select pairs of `config.run_dir` by the criteria and write them to `config.out`."""
    config.validate()
    writer_cls = lookup(WRITERS, config.format, "--format")
    start = time.perf_counter()
    infos = read_scores_infos(RunLayout(config.run_dir))
    with open_scores(config, list(infos)) as db:
        selection = build_selection(config, db)
        outcomes = outcomes_by_file(db, selection)
        shards = [ScoredShard(path, info, outcomes[str(path)]) for path, info in infos.items()]
        check_out_dir(config, shards)
        check_sources(shards)
        with hold(config.out, "filter"):  # one writer per subset folder
            done = prepare_subset_dir(config.out, plan_fingerprint(_plan(config, shards)), overwrite=config.overwrite)
            meta, as_text = meta_schema_of(s.reader() for s in shards if s.kept)
            roller = ShardRoller(
                config.out, writer_cls=writer_cls, shard_size=config.shard_size,
                meta_schema=meta, as_text=as_text, done=done,
            )
            read = _copy_with_progress(shards, db=db, selection=selection, roller=roller, quiet=quiet)
            manifest = make_manifest(config, shards, selection, roller)
            finish_subset_dir(config.out, manifest.to_json())
    summary = FilterSummary(manifest, time.perf_counter() - start, read, len(done))
    if not manifest.counts.kept:
        log.warning("no pair passed the criteria: %s holds only its manifest", config.out)
    log.info("wrote %d %s shards to %s (%s pairs/s)", len(manifest.outputs), config.format, config.out,
             f"{summary.rows_per_second:,.0f}")
    return summary


def open_scores(config: FilterConfig, files: list[Path]) -> ScoresDatabase:
    """The scores files as DuckDB views, with the --where and the recipe parsed, the dedup table if
    asked for, and every column the criteria read checked to be there."""
    recipe = recipe_named(config.recipe) if config.recipe is not None else None
    dedup = None
    if config.dedup:
        from curate.index.store import dedup_table  # imports torch: only when asked for

        dedup = dedup_table(config.run_dir)
    db = ScoresDatabase(files, where=config.where, dedup=dedup, recipe=recipe)
    try:
        check_columns(config, db.schema, run=config.run_dir)
    except CurateError:
        db.close()
        raise
    return db


def read_scores_infos(layout: RunLayout) -> dict[Path, ScoresInfo]:
    """Every scores file of the run with its metadata; refuses a run without scores, files
    that are not scores files, and scores from more than one projection (their similarities
    are not comparable, so one threshold could not mean one thing)."""
    files = layout.shard_files(Table.SCORES)
    if not files:
        raise CurateError(
            f"{layout.root} has no scores ({layout.table_dir('scores')}/*.parquet); "
            f"run `curate score ... --out {layout.root}` first."
        )
    infos = {path: _scores_info(path) for path in files}
    projections = sorted({info.projection for info in infos.values()})
    if len(projections) > 1:
        raise CurateError(
            f"{layout.root} holds scores from {len(projections)} projections ({', '.join(projections)}); "
            "rescore the whole run with one projection before filtering."
        )
    return infos


def _scores_info(path: Path) -> ScoresInfo:
    try:
        return read_scores_info(pq.read_schema(path))
    except (KeyError, TypeError, ValueError, *SHARD_ERRORS) as exc:
        raise CurateError(
            f"{path} is not a scores file curate can read (no usable scores metadata: {type(exc).__name__}: {exc}); "
            "move it out of scores/ or rescore the shard."
        ) from None


def check_out_dir(config: FilterConfig, shards: list[ScoredShard]) -> None:
    """Refuse an output folder that would mix the subset into the run or over its sources."""
    out = config.out.resolve()
    run = config.run_dir.resolve()
    if out == run or any(out.is_relative_to(run / table.value) for table in Table):
        raise CurateError(
            f"--out {config.out} is the run itself or inside the run's tables; choose a folder of its own."
        )
    for shard in shards:
        source = shard.source.path
        if isinstance(source, Path) and source.resolve().is_relative_to(out):
            raise CurateError(
                f"--out {config.out} contains the source shard {shard.info.source}; choose another folder."
            )


def check_sources(shards: list[ScoredShard]) -> None:
    """Every source a kept pair comes from must still be where it was scored."""
    for shard in shards:
        if shard.kept and not shard.source.path.exists():
            raise CurateError(
                f"Source shard {shard.info.source} (scored in {shard.scores}) is missing: it was moved or "
                "deleted after scoring. Put it back, or embed and score it again where it is now."
            )


def meta_schema_of(readers: Iterable[ShardReader]) -> tuple[pa.Schema, frozenset[str]]:
    """One meta schema for every output shard: the sources' meta columns unified
    (`unified_meta`: widened types, text where types cannot merge)."""
    return unified_meta(reader.meta_schema() for reader in readers)


def _plan(config: FilterConfig, shards: list[ScoredShard]) -> dict:
    """What decides the outputs: a rerun with the same plan may reuse finished shards."""
    files = [(str(s.scores.resolve()), s.scores.stat().st_size, s.scores.stat().st_mtime_ns) for s in shards]
    criteria = {k: getattr(config, k) for k in CRITERIA_OPTIONS}
    if config.dedup:  # a redone dedup changes which rows go, so finished shards must not be reused
        from curate.index.store import dedup_table

        table = dedup_table(config.run_dir)
        criteria["dedup_table"] = (str(table.resolve()), table.stat().st_size, table.stat().st_mtime_ns)
    return {"criteria": criteria, "format": config.format, "shard_size": config.shard_size, "scores": files}


def _copy_with_progress(
    shards: list[ScoredShard], *, db: ScoresDatabase, selection: Selection, roller: ShardRoller, quiet: bool
) -> int:
    from curate.console import make_progress

    todo = [s for s in shards if s.kept]
    estimates = [s.reader().count_if_local() for s in todo]
    total = None if None in estimates else sum(estimates)  # type: ignore[arg-type]
    read = 0
    mirror = ShardMirror(sidecars_of)  # local copies of sources that live at URLs
    with roller, mirror, make_progress(unit="pairs", quiet=quiet) as progress:
        task = progress.add_task("filter", total=total)
        for shard, estimate in zip(todo, estimates):
            progress.update(task, description=f"filter {shard.info.shard_id}")
            if roller.all_done(shard.kept):  # finished by an interrupted run: nothing to write
                roller.skip(shard.kept)
                progress.advance(task, estimate or 0)
                continue
            kept = kept_table(db, selection, str(shard.scores))
            with mirror.local(shard.source) as local:
                done = copy_shard(shard, local, kept, roller=roller, advance=lambda n: progress.advance(task, n))
            progress.advance(task, max((estimate or 0) - done, 0))  # the tail it did not need to read
            read += done
    return read


def copy_shard(shard: ScoredShard, local: Shard, kept: pa.Table, *, roller: ShardRoller, advance: Advance) -> int:
    """Write the source's kept samples (`kept`: key, similarity) in the reader's order, reading
    it from `local`, its local copy, by the fastest way that applies. Returns how many records
    were read."""
    reader = shard.reader(local)
    copied = copy_for(reader, roller.writer_cls.format_name).copy(reader, kept, roller=roller, advance=advance)
    if copied.missing:
        raise CurateError(
            f"{len(copied.missing)} kept pairs of shard {shard.info.shard_id} (e.g. {copied.missing[0]}) are no "
            f"longer in its source {shard.info.source}: it changed after scoring; embed and score it again."
        )
    return copied.read


def make_manifest(
    config: FilterConfig, shards: list[ScoredShard], selection: Selection, roller: ShardRoller
) -> SubsetManifest:
    """The subset's record: inputs, criteria, projection, counts (that add up), outputs."""
    inputs = [
        ScoresInput(str(s.scores.resolve()), s.info.shard_id, s.info.source, s.info.format, s.rows, s.kept)
        for s in shards
    ]
    total = sum((s.outcomes for s in shards), Counter())
    reasons = [c.reason for c in selection.criteria]
    dropped = {reason: total[reason] for reason in DROP_REASONS if reason in reasons}
    criteria = {k: getattr(config, k) for k in (*CRITERIA_OPTIONS, "shard_size")}
    criteria["top_fraction_threshold"] = asdict(selection.threshold) if selection.threshold else None
    if config.recipe is not None:
        criteria["recipe_where"] = recipe_named(config.recipe).where  # what the recipe stood for when it was cut
    return SubsetManifest(
        run_dir=str(config.run_dir.resolve()), inputs=inputs, criteria=criteria,
        projections=sorted({s.info.projection for s in shards}),
        projection_dirs=sorted({s.info.projection_dir for s in shards}),
        counts=FilterCounts(scored=sum(total.values()), kept=total[KEPT], dropped_by_reason=dropped),
        format=config.format, outputs=roller.outputs(), versions=library_versions(),
    )
