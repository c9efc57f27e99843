"""`curate embed`: shards -> `embeddings/` and `errors/`, one shard at a time, resumable.

Per shard: the reader streams records; unusable ones go to the error table; usable ones are
batched, decoded in worker processes (bounded look-ahead), encoded by both towers on the
device, and written a row group at a time. The errors file is published first and the
embeddings file last: its presence marks the shard done, so a rerun skips it.

Scheduling is not this module's business: `run_embed` hands the shards still to do and a
builder of `EmbedWorker` to the executor `--executor` names (local or Ray), which builds
the worker (and so loads the models) in the process where it runs.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from functools import partial
from itertools import islice
from typing import Callable, Iterable, Iterator

import numpy as np
import pyarrow as pa

from curate.io.atomic import remove_stale_tmp
from curate.io.formats.base import READERS, Shard
from curate.io.formats.detect import find_shards
from curate.io.location import io_map, is_url
from curate.io.mirror import ShardMirror
from curate.io.tables import ParquetTableWriter, table_schema
from curate.models.encoders import Encoders, load_encoders
from curate.models.preprocess import DecodedBatch, decode_batch
from curate.runtime.executors import make_executor
from curate.runtime.jobs import ShardJob, ignore_progress
from curate.runtime.pool import OrderedPool
from curate.runtime.timing import StageTimer
from curate.schemas.config import EmbedConfig, EncoderConfig
from curate.schemas.layout import RunLayout
from curate.schemas.sample import ErrorKind, Record, Sample, SampleError, Stage
from curate.schemas.tables import (
    ERRORS_SCHEMA,
    EmbeddingsInfo,
    embeddings_schema,
    read_embeddings_info,
)
from curate.versions import library_versions

log = logging.getLogger("curate")
ERROR_FLUSH_ROWS = 1024


@dataclass
class ShardResult:
    """What one shard produced; `skipped` when a previous run had already finished it."""

    shard_id: str
    pairs: int = 0
    errors: Counter = field(default_factory=Counter)
    seconds: float = 0.0
    skipped: bool = False
    stages: dict[str, float] = field(default_factory=dict)  # seconds per stage, for the summary

    @property
    def samples(self) -> int:
        """Every sample the shard held: in = out + errors."""
        return self.pairs + sum(self.errors.values())


@dataclass
class EmbedSummary:
    """Totals for the end-of-run table and for callers (score, benchmarks)."""

    shards: list[ShardResult]
    timer: StageTimer
    seconds: float

    @property
    def pairs(self) -> int:
        return sum(s.pairs for s in self.shards if not s.skipped)

    @property
    def errors(self) -> Counter:
        return sum((s.errors for s in self.shards if not s.skipped), Counter())

    @property
    def pairs_per_second(self) -> float:
        return self.pairs / self.seconds if self.seconds > 0 else 0.0


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
    """Never let a reader's unexpected failure crash the run: it becomes a shard error row."""
    try:
        yield from records
    except Exception as exc:  # noqa: BLE001 - recorded in the error table, the run goes on
        yield SampleError(shard_id, Stage.READ, ErrorKind.UNREADABLE_SHARD, f"{type(exc).__name__}: {exc}")


def vectors_to_arrow(vectors: np.ndarray) -> pa.Array:
    """(N, D) floats -> fixed_size_list<float16>[D]."""
    flat = pa.array(np.ascontiguousarray(vectors, dtype=np.float16).reshape(-1))
    return pa.FixedSizeListArray.from_arrays(flat, vectors.shape[1])


def images_of(batch: list[Sample]) -> list[bytes]:
    """What a decode worker receives: only the bytes, not the whole samples."""
    return [s.image for s in batch]  # type: ignore[misc]


class ErrorSink:
    """Collects error rows for one shard and writes them in row groups."""

    def __init__(self, writer: ParquetTableWriter) -> None:
        self.writer = writer
        self.rows: list[SampleError] = []
        self.counts: Counter = Counter()

    def add(self, error: SampleError) -> None:
        self.rows.append(error)
        self.counts[error.error] += 1
        if len(self.rows) >= ERROR_FLUSH_ROWS:
            self.flush()

    def flush(self) -> None:
        names = ("key", "stage", "error", "message")
        self.writer.write_rows({n: [getattr(e, n) for e in self.rows] for n in names})
        self.rows.clear()


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
            versions=library_versions(), limit=self.config.limit,
        )

    def run(self) -> ShardResult:
        start = time.perf_counter()
        schema = embeddings_schema(self.info(), self.reader.meta_schema())
        emb = ParquetTableWriter(self.layout.embeddings(self.shard.shard_id), schema)
        errors = ErrorSink(ParquetTableWriter(self.layout.errors(self.shard.shard_id), ERRORS_SCHEMA))
        try:
            pairs = self._embed_all(emb, errors)
            errors.flush()
            errors.writer.close()
            with self.timer.stage("write"):
                emb.close()  # published last: marks the shard done
        except BaseException:
            emb.abort()
            errors.writer.abort()
            raise
        return ShardResult(self.shard.shard_id, pairs, errors.counts, time.perf_counter() - start)

    def _batches(self, errors: ErrorSink) -> Iterator[list[Sample]]:
        """Usable samples in batches; everything else goes straight to the error table."""
        records = guarded(self.reader, self.shard.shard_id)
        if self.config.limit is not None:
            records = islice(records, self.config.limit)
        batch: list[Sample] = []
        for record in records:
            problem = record if isinstance(record, SampleError) else check_sample(record)
            if problem is not None:
                errors.add(problem)
                self.advance(1)
                continue
            batch.append(record)  # type: ignore[arg-type]
            if len(batch) == self.config.batch_size:
                yield batch
                batch = []
        if batch:
            yield batch

    def _embed_all(self, emb: ParquetTableWriter, errors: ErrorSink) -> int:
        stream = self.pool.map(decode_batch, self._batches(errors), args=(self.prep,), payload=images_of)
        pairs = 0
        while True:
            with self.timer.stage("read+decode wait"):
                item = next(stream, None)
            if item is None:
                return pairs
            batch, decoded = item
            pairs += self._embed_batch(batch, decoded, emb, errors)
            self.advance(len(batch))

    def _embed_batch(self, batch: list[Sample], decoded: DecodedBatch, emb: ParquetTableWriter, errors: ErrorSink) -> int:
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
            for name in self.reader.meta_schema().names:
                columns.setdefault(name, [s.meta.get(name) for s in ok])
            emb.write_rows(columns)
        return len(ok)


def finished(layout: RunLayout, shard: Shard, config: EmbedConfig, existing: set[str]) -> bool:
    """A shard is done when its embeddings file exists and was made with the same --limit.

    `existing` names the run's embeddings files from one listing, sparing a check per shard."""
    path = layout.embeddings(shard.shard_id)
    if config.overwrite or path.name not in existing:
        return False
    info = read_embeddings_info(table_schema(path))
    check_same_encoders(info, config.encoders, path)
    return info.limit == config.limit


def check_same_encoders(info: EmbeddingsInfo, encoders: EncoderConfig, path: object) -> None:
    """Refuse to mix vectors from other encoders into one run."""
    from curate.errors import CurateError

    text = info.text_encoder.settings
    same = (
        info.image_encoder.model == encoders.image_model
        and info.text_encoder.model == encoders.text_model
        and text.get("pooling") == encoders.text_pooling
        and text.get("max_tokens") == encoders.max_text_tokens
    )
    if not same:
        raise CurateError(
            f"{path} was embedded with {info.image_encoder.model} + {info.text_encoder.model} "
            f"({text}); pass --overwrite or another --out to embed with other encoders."
        )


class EmbedWorker:
    """The worker entry point every executor drives, one per process (local or Ray worker).

    Built from the config inside the process that uses it: loads the encoders and starts the
    decode pool once, then embeds whole shards, one `run` call each, reusing both (and the
    mirror that holds local copies of remote shards).
    """

    def __init__(self, config: EmbedConfig) -> None:
        self.config = config
        self.startup = StageTimer()
        with self.startup.stage("load models"):
            self.encoders = load_encoders(config.encoders)
        log.info("encoders on %s: %s + %s", self.encoders.device, config.encoders.image_model, config.encoders.text_model)
        self.pool = OrderedPool(config.workers).__enter__()
        self.mirror = ShardMirror()

    def run(self, shard: Shard, advance: Callable[[int], None] = ignore_progress,
            upcoming: Shard | None = None) -> ShardResult:
        timer, self.startup = self.startup, StageTimer()  # the first shard carries the load time
        with timer.stage("copy shard"):
            local = self.mirror.fetch(shard)
        self.mirror.prefetch(upcoming)  # copied while this shard is embedded
        try:
            result = ShardEmbedder(
                shard, local=local, encoders=self.encoders, pool=self.pool, config=self.config, timer=timer,
                advance=advance,
            ).run()
        finally:
            self.mirror.release(local)
        result.stages = dict(timer.seconds)
        return result

    def close(self) -> None:
        self.pool.__exit__(None, None, None)
        self.mirror.close()


def embed_shards_worker(shards: list[Shard], config: EmbedConfig) -> list[ShardResult]:
    """Embed `shards` in this process: what one worker of any executor does, in one call."""
    worker = EmbedWorker(config)
    try:
        return [worker.run(shard) for shard in shards]
    finally:
        worker.close()


def run_embed(config: EmbedConfig, *, quiet: bool = False) -> EmbedSummary:
    """Embed every shard of `config.inputs` that the run directory does not hold yet."""
    config.validate()
    layout = RunLayout(config.out)
    shards = find_shards(list(config.inputs), format=config.format)
    _remove_stale_tmp(layout)
    existing = {p.name for p in layout.shard_files("embeddings")}
    done = io_map(partial(finished, layout, config=config, existing=existing), shards, remote=is_url(layout.root))
    todo = [s for s, finished_ in zip(shards, done) if not finished_]
    skipped = [ShardResult(s.shard_id, skipped=True) for s in shards if s not in todo]
    if skipped:
        log.info("%d of %d shards already embedded; skipping them", len(skipped), len(shards))
    timer = StageTimer()
    if not todo:
        return EmbedSummary(skipped, timer, 0.0)
    job = ShardJob(todo, partial(EmbedWorker, config), label="embed", total=_estimate_total(todo, config), quiet=quiet)
    outcome = make_executor(config.executor).run(job)
    _remove_stale_tmp(layout)  # what workers killed mid-shard (and then retried) left behind
    for result in outcome.results:
        for stage, seconds in result.stages.items():
            timer.seconds[stage] += seconds
    return EmbedSummary(skipped + outcome.results, timer, outcome.seconds)


def _remove_stale_tmp(layout: RunLayout) -> None:
    for table in ("embeddings", "errors"):
        remove_stale_tmp(layout.table_dir(table))


def _estimate_total(shards: list[Shard], config: EmbedConfig) -> int | None:
    """Samples over all shards for the progress bar's ETA, if every reader knows its count
    (remote shards are not opened just to count them: the bar then counts without an ETA)."""
    estimates = [READERS[s.format](s).count_if_local() for s in shards]
    if None in estimates:
        return None
    return sum(min(e, config.limit or e) for e in estimates)  # type: ignore[type-var]
