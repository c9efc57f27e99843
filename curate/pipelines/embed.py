"""`curate embed`: shards -> `embeddings/` and `errors/`, one shard at a time, resumable.

Per shard: the reader streams records; unusable ones go to the error table; usable ones are
batched, decoded in worker processes (bounded look-ahead; the workers also record each
image's decoded size and format and identify its caption's language: the pair facts),
encoded by both towers on the device, and written a row group at a time. The errors file is published first and the
embeddings file last: its presence marks the shard done, so a rerun skips it.

Scheduling is not this module's business: `run_embed` hands the shards still to do and a
builder of `EmbedWorker` to the executor `--executor` names (local or Ray), which builds
the worker (and so loads the models) in the process where it runs.
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from functools import partial
from itertools import islice
from typing import Callable, Iterable, Iterator

from curate.io.atomic import remove_stale_tmp
from curate.io.embeddings import check_encoders, vectors_to_arrow
from curate.io.error_table import ErrorTable
from curate.io.formats.base import Shard
from curate.io.formats.detect import find_shards
from curate.io.formats.registry import READERS, sidecars_of, streams_in_place
from curate.io.location import RemoteReadError, check_backend, io_map, is_url, with_locations
from curate.io.mirror import ShardMirror
from curate.io.run_lock import hold
from curate.io.stats_files import write_outcome
from curate.io.tables import ParquetTableWriter, table_schema
from curate.models.encoders import Encoders, load_encoders
from curate.models.pair_facts import decode_pairs, fact_columns, warm_decoder
from curate.models.preprocess import DecodedBatch
from curate.runtime.executors import make_executor
from curate.runtime.jobs import ShardJob, ignore_progress
from curate.runtime.pool import OrderedPool
from curate.runtime.threads import give_model_the_usable_cores
from curate.runtime.timing import StageTimer
from curate.schemas.arrow_schemas import embeddings_schema
from curate.schemas.config.flow import EmbedConfig
from curate.schemas.layout import RunLayout
from curate.schemas.outcome import ShardOutcome, StepOutcome
from curate.schemas.sample import ErrorKind, Record, Sample, SampleError, Stage
from curate.schemas.tables import EmbeddingsInfo, Table, read_embeddings_info
from curate.versions import library_versions

log = logging.getLogger("curate")
STEP = "embed"
LOOKAHEAD_BATCHES = 4  # batches' worth of image bytes queued for decoding at most


def check_sample(sample: Sample) -> SampleError | None:
    """Turn a sample the encoders cannot use (no image, no caption) into its error row."""
    if sample.image is None:
        return SampleError(sample.key, Stage.READ, ErrorKind.MISSING_IMAGE, "no image member for this key")
    if sample.text is None:
        return SampleError(sample.key, Stage.READ, ErrorKind.MISSING_CAPTION, "no caption for this key")
    if not sample.text.strip():
        return SampleError(sample.key, Stage.READ, ErrorKind.EMPTY_CAPTION, "caption is empty or blank")
    return None


def guarded(records: Iterable[Record], shard_id: str) -> Iterator[Record]:
    """Never let a reader's unexpected failure crash the run: it becomes a shard error row.

    A failed request for a remote shard's bytes is not the shard's fault: it stops the shard
    (nothing is written, a rerun redoes it) instead of ending it as unreadable."""
    try:
        yield from records
    except RemoteReadError:
        raise
    except Exception as exc:  # noqa: BLE001 - recorded in the error table, the run goes on
        yield SampleError(shard_id, Stage.READ, ErrorKind.UNREADABLE_SHARD, f"{type(exc).__name__}: {exc}")


def images_of(batch: list[Sample]) -> list[bytes]:
    """What a decode worker receives of the images: only the bytes, not the whole samples."""
    return [s.image for s in batch]  # type: ignore[misc]


def pair_payload(batch: list[Sample]) -> tuple[list[bytes], list[str]]:
    """What a decode worker receives: the image bytes and the captions (for their language)."""
    return images_of(batch), [s.text for s in batch]  # type: ignore[misc]


def batch_bytes(batch: list[Sample]) -> int:
    """The image bytes a batch holds (what the pool's look-ahead budget counts)."""
    return sum(len(s.image) for s in batch)  # type: ignore[arg-type]


class ShardEmbedder:
    """Embeds one shard end to end; built per shard, sharing encoders and the decode pool.

    `local` is the shard as the reader opens it: the shard itself, or a local copy of a
    remote one (the tables still name the shard's own source).
    """

    def __init__(
        self, shard: Shard, *, local: Shard, encoders: Encoders, pool: OrderedPool, config: EmbedConfig,
        timer: StageTimer, advance: Callable[[int], None],
    ) -> None:
        self.shard, self.encoders, self.pool, self.config = shard, encoders, pool, config
        self.timer, self.advance = timer, advance
        self.layout = RunLayout(config.out)
        self.reader = READERS[shard.format](local)
        self.prep = replace(encoders.image.preprocess, max_pixels=config.max_pixels)

    def info(self) -> EmbeddingsInfo:
        return EmbeddingsInfo(
            shard_id=self.shard.shard_id, source=self.shard.source, format=self.shard.format,
            image_encoder=self.encoders.image.info, text_encoder=self.encoders.text.info,
            versions=library_versions(), limit=self.config.limit, columns=self.shard.columns.chosen(),
        )

    def run(self) -> ShardOutcome:
        """Errors file, then the stats file, then the embeddings file: the last one marks the shard done."""
        start = time.perf_counter()
        schema = embeddings_schema(self.info(), self.reader.meta_schema())
        emb = ParquetTableWriter(self.layout.embeddings(self.shard.shard_id), schema)
        errors = ErrorTable(self.layout.errors(self.shard.shard_id))
        try:
            pairs = self._embed_all(emb, errors)
            with self.timer.stage("write"):
                errors.close()
                outcome = ShardOutcome(STEP, self.shard.shard_id, rows=pairs, errors=errors.counts,
                                       stages=dict(self.timer.seconds), seconds=time.perf_counter() - start)
                write_outcome(self.layout, outcome)
                emb.close()
        except BaseException:
            emb.abort()
            errors.abort()
            raise
        return outcome

    def _batches(self, errors: ErrorTable) -> Iterator[list[Sample]]:
        """Usable samples in batches; everything else goes straight to the error table."""
        records = guarded(self.reader, self.shard.shard_id)
        if self.config.limit is not None:
            records = islice(records, self.config.limit)
        batch: list[Sample] = []
        budget, held = self.config.batch_bytes, 0
        for record in records:
            problem = record if isinstance(record, SampleError) else check_sample(record)
            if problem is not None:
                errors.add(problem)
                self.advance(1)
                continue
            size = len(record.image)  # type: ignore[union-attr,arg-type]
            if batch and held + size > budget:  # huge images: the byte budget closes the batch first
                yield batch
                batch, held = [], 0
            batch.append(record)  # type: ignore[arg-type]
            held += size
            if len(batch) == self.config.batch_size:
                yield batch
                batch, held = [], 0
        if batch:
            yield batch

    def _embed_all(self, emb: ParquetTableWriter, errors: ErrorTable) -> int:
        stream = self.pool.map(decode_pairs, self._batches(errors), args=(self.prep,), payload=pair_payload,
                               size=batch_bytes, shared=("pixels", self._pixel_bytes()))
        pairs = 0
        while True:
            with self.timer.stage("read+decode wait"):
                item = next(stream, None)
            if item is None:
                return pairs
            batch, decoded = item
            pairs += self._embed_batch(batch, decoded, emb, errors)
            self.advance(len(batch))
            del item, batch, decoded  # dropped before the next batch is read, not after

    def _pixel_bytes(self) -> int:
        """The most a batch's uint8 crops take: the size of a shared-memory slot."""
        return self.config.batch_size * self.prep.crop * self.prep.crop * 3

    def _embed_batch(self, batch: list[Sample], decoded: DecodedBatch, emb: ParquetTableWriter, errors: ErrorTable) -> int:
        for index, kind, message in decoded.failed:
            errors.add(SampleError(batch[index].key, Stage.DECODE, kind, message))
        ok = [batch[i] for i in decoded.ok]
        if not ok:
            return 0
        with self.timer.stage("model"):
            image_vecs = self.encoders.image.encode(decoded.pixels)
            text_vecs = self.encoders.text.encode([s.text for s in ok])  # type: ignore[misc]
        with self.timer.stage("write"):
            columns = {"key": [s.key for s in ok], "text": [s.text for s in ok]}
            columns["image_emb"] = vectors_to_arrow(image_vecs)
            columns["text_emb"] = vectors_to_arrow(text_vecs)
            columns.update(fact_columns(decoded))  # before the meta: a source's column of the same name gives way
            for name in self.reader.meta_schema().names:
                columns.setdefault(name, [s.meta.get(name) for s in ok])
            emb.write_rows(columns)
        return len(ok)


def finished(layout: RunLayout, shard: Shard, config: EmbedConfig, existing: set[str]) -> bool:
    """A shard is done when its embeddings file exists and was made with the same --limit and
    the same column choices.

    `existing` names the run's embeddings files from one listing, sparing a check per shard."""
    path = layout.embeddings(shard.shard_id)
    if config.overwrite or path.name not in existing:
        return False
    info = read_embeddings_info(table_schema(path))
    check_encoders(path, info, config.encoders.expected(),
                   remedy="pass --overwrite or another --out to embed with other encoders.")
    return info.limit == config.limit and info.columns == shard.columns.chosen()


class EmbedWorker:
    """The worker entry point every executor drives, one per process (local or Ray worker).

    Built from the config inside the process that uses it: loads the encoders and starts the
    decode pool once, then embeds whole shards, one `run` call each, reusing both (and the
    mirror that holds local copies of remote shards).
    """

    def __init__(self, config: EmbedConfig) -> None:
        self.config = config
        self.startup = StageTimer()
        threads = give_model_the_usable_cores()
        # Started first: the decode workers start up and warm while the encoders load. Look-ahead:
        # as many batches as keep the workers busy, and at most a few batches' bytes.
        self.pool = OrderedPool(config.workers, max_in_flight_bytes=LOOKAHEAD_BATCHES * config.batch_bytes,
                                warm_up=warm_decoder).__enter__()
        try:
            with self.startup.stage("load models"):
                self.encoders = load_encoders(config.encoders)
        except BaseException:
            self.pool.__exit__(None, None, None)
            raise
        self.device = str(self.encoders.device)
        log.info("encoders on %s (%d model thread%s beside %d decode process%s): %s + %s", self.device, threads,
                 "s" if threads != 1 else "", config.workers, "es" if config.workers != 1 else "",
                 config.encoders.image_checkpoint, config.encoders.text_checkpoint)
        self.mirror = ShardMirror(sidecars_of, in_place=streams_in_place)

    def run(self, shard: Shard, advance: Callable[[int], None] = ignore_progress,
            upcoming: Shard | None = None) -> ShardOutcome:
        timer, self.startup = self.startup, StageTimer()  # the first shard carries the load time
        with timer.stage("copy shard"):
            local = self.mirror.fetch(shard)
        self.mirror.prefetch(upcoming)  # copied while this shard is embedded
        try:
            return ShardEmbedder(
                shard, local=local, encoders=self.encoders, pool=self.pool, config=self.config, timer=timer,
                advance=advance,
            ).run()
        finally:
            self.mirror.release(local)

    def close(self) -> None:
        self.pool.__exit__(None, None, None)
        self.mirror.close()


def embed_shards_worker(shards: list[Shard], config: EmbedConfig) -> list[ShardOutcome]:
    """Embed `shards` in this process: what one worker of any executor does, in one call."""
    worker = EmbedWorker(config)
    try:
        return [worker.run(shard) for shard in shards]
    finally:
        worker.close()


def run_embed(config: EmbedConfig, *, quiet: bool = False, shards: list[Shard] | None = None) -> StepOutcome:
    """Embed every shard of `config.inputs` that the run directory does not hold yet.

    `shards`, when given, are those shards as an earlier `find_shards` over all of a command's
    inputs named them (`score` embeds only the ones it lacks, under the ids they have among all)."""
    config.validate()
    config = with_locations(config, "inputs", "out")
    check_backend(config.out)
    if shards is None:
        shards = find_shards(list(config.inputs), format=config.format, columns=config.columns)
    with hold(config.out, STEP) as since:  # one writer per run: a second one would sweep our temp files
        return _embed(config, shards, settled_before=since, quiet=quiet)


def _embed(config: EmbedConfig, shards: list[Shard], *, settled_before: float, quiet: bool) -> StepOutcome:
    layout = RunLayout(config.out)
    _remove_stale_tmp(layout, settled_before=settled_before)
    existing = {p.name for p in layout.shard_files(Table.EMBEDDINGS)}
    done = io_map(partial(finished, layout, config=config, existing=existing), shards, remote=is_url(layout.root))
    todo = [s for s, finished_ in zip(shards, done) if not finished_]
    skipped = [ShardOutcome(STEP, s.shard_id, skipped=True) for s in shards if s not in todo]
    if skipped:
        log.info("%d of %d shards already embedded; skipping them", len(skipped), len(shards))
    if not todo:
        return StepOutcome(STEP, skipped, 0.0)
    job = ShardJob(todo, partial(EmbedWorker, config), label=STEP, total=_estimate_total(todo, config), quiet=quiet)
    outcome = make_executor(config.executor).run(job)
    _remove_stale_tmp(layout, settled_before=time.time())  # what workers killed mid-shard (and retried) left behind
    return StepOutcome(STEP, skipped + outcome.results, outcome.seconds)


def _remove_stale_tmp(layout: RunLayout, *, settled_before: float) -> None:
    for folder in (layout.table_dir(Table.EMBEDDINGS), layout.table_dir(Table.ERRORS), layout.stats_dir(STEP)):
        remove_stale_tmp(folder, settled_before=settled_before)


def _estimate_total(shards: list[Shard], config: EmbedConfig) -> int | None:
    """Samples over all shards for the progress bar's ETA, if every reader knows its count
    (remote shards are not opened just to count them: the bar then counts without an ETA)."""
    estimates = [READERS[s.format](s).count_if_local() for s in shards]
    if None in estimates:
        return None
    return sum(min(e, config.limit or e) for e in estimates)  # type: ignore[type-var]
