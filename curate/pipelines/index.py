"""`curate index`: a run's embeddings -> `RUN_DIR/index/` (FAISS over projected vectors).

One streaming pass reads the embeddings shard by shard, projects both sides with the
projection and appends the normalised vectors to scratch files, writing the id map as it
goes. Each side's index is then trained on a sample, filled chunk by chunk (memory: the
index plus one chunk), and its search settings tuned until recall@10 against exact search
on sampled queries reaches the target. Everything is built in a temporary folder that
replaces `index/` only when complete, card last.
"""

from __future__ import annotations

import logging
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

import numpy as np
import pyarrow as pa

from curate.errors import CurateError
from curate.index.choice import choose_plan
from curate.index.faiss_lib import import_faiss, to_cpu, to_gpu, use_gpu
from curate.index.kinds import IndexPlan, create_index
from curate.index.recall import exact_neighbours, sample_rows, tune
from curate.index.store import embeddings_fingerprint, read_index_card
from curate.io.atomic import atomic_dir, remove_stale_dirs, write_json_atomic
from curate.io.run_lock import hold
from curate.io.embeddings import (
    check_encoders,
    embeddings_files,
    embeddings_info,
    iter_batches,
    row_count,
    vectors,
)
from curate.io.tables import ParquetTableWriter
from curate.io.vectorfile import VectorFile
from curate.models.projection import Projection, load_projection
from curate.pipelines.native import projection_folder
from curate.pipelines.train_data import common_encoders
from curate.runtime.timing import StageTimer
from curate.schemas.config.vectors import IndexConfig
from curate.schemas.index import (
    IDS_FILE,
    IDS_SCHEMA,
    INDEX_CARD_FILE,
    RECALL_K,
    SIDES,
    IndexCard,
    SideIndex,
    index_file,
)
from curate.schemas.layout import RunLayout
from curate.schemas.projection import ProjectionCard
from curate.units import format_size
from curate.versions import library_versions

log = logging.getLogger("curate")


@dataclass
class IndexResult:
    """What `run_index` did: the card, and whether an up-to-date index was already there."""

    card: IndexCard
    skipped: bool = False


@dataclass
class ProjectedRun:
    """Both sides' projected vectors, row-aligned with ids.parquet."""

    image: VectorFile
    text: VectorFile

    def side(self, name: str) -> VectorFile:
        return self.image if name == "image" else self.text


def check_run_encoders(files: list[Path], card: ProjectionCard, projection_dir: Path) -> None:
    """Refuse to project embeddings made by other encoders than the projection was trained on."""
    image, text = common_encoders(files)
    check_encoders(files[0].parent, replace(embeddings_info(files[0]), image_encoder=image, text_encoder=text),
                   (card.image_encoder, card.text_encoder),
                   remedy=f"{projection_dir} was trained on other vectors; use a projection trained on this run's encoders.")


def project_run(files: list[Path], projection: Projection, *, ids_path: Path, scratch: Path,
                advance: Callable[[int], None]) -> ProjectedRun:
    """Stream every embeddings file once: projected vectors to scratch, (id, key, shard) to ids.parquet."""
    out = ProjectedRun(VectorFile(scratch / "image.f32", projection.out_dim), VectorFile(scratch / "text.f32", projection.out_dim))
    ids = ParquetTableWriter(ids_path, IDS_SCHEMA)
    for path in files:
        for batch in iter_batches(path, columns=["key", "image_emb", "text_emb"]):
            first = out.image.rows
            out.image.append(projection.project_image(vectors(batch.column("image_emb")).astype(np.float32)))
            out.text.append(projection.project_text(vectors(batch.column("text_emb")).astype(np.float32)))
            ids.write_rows({"id": pa.array(np.arange(first, out.image.rows)), "key": batch.column("key"),
                            "shard": [path.stem] * batch.num_rows})
            advance(batch.num_rows)
        pa.default_memory_pool().release_unused()  # the Parquet reader's buffers, kept by the allocator
    ids.close()
    out.image.finish()
    out.text.finish()
    return out


def build_side(vectors: VectorFile, plan: IndexPlan, config: IndexConfig, *, target: Path, gpu: bool) -> SideIndex:
    """Train, fill, tune and write one index; returns its card entry."""
    faiss, timer = import_faiss(), StageTimer()
    index, on_gpu = create_index(plan, vectors.dim), False
    if gpu:
        index, on_gpu = to_gpu(index, plan.kind)
    with timer.stage("train"):
        if plan.train_rows:
            index.train(vectors.take(sample_rows(vectors.rows, plan.train_rows, seed=config.seed)))
    with timer.stage("add"):
        for _, block in vectors.chunks():
            index.add(block)
    with timer.stage("tune"):
        queries = vectors.take(sample_rows(vectors.rows, config.recall_queries, seed=config.seed + 1))
        truth = exact_neighbours(queries, vectors, min(RECALL_K, vectors.rows))
        settings, recall = tune(index, plan.ladder, queries, truth, target=config.target_recall, on_gpu=on_gpu)
    with timer.stage("write"):
        faiss.write_index(to_cpu(index, on_gpu), str(target))
    if recall < config.target_recall:
        log.warning("%s index reaches recall@10 %.3f at most (target %.2f)", plan.kind, recall, config.target_recall)
    return SideIndex(
        kind=plan.kind, factory=plan.factory, build={**plan.build, "train_rows": plan.train_rows}, search=settings,
        recall_at_10=round(recall, 4), recall_queries=len(queries), memory_bytes=plan.memory_bytes,
        file_bytes=target.stat().st_size, seconds={k: round(v, 3) for k, v in timer.seconds.items()}, gpu=on_gpu,
    )


def up_to_date(existing: IndexCard | None, *, fingerprint: str, projection: ProjectionCard, config: IndexConfig) -> bool:
    """An index built from these embeddings, this projection and the same request needs no rebuild."""
    return existing is not None and (
        existing.embeddings_fingerprint == fingerprint
        and existing.projection_fingerprint == projection.fingerprint
        and existing.requested_type == config.index_type
        and existing.memory_budget == config.memory_budget
        and existing.target_recall == config.target_recall
    )


def run_index(config: IndexConfig, *, quiet: bool = False) -> IndexResult:
    """Build (or keep, when up to date) `RUN_DIR/index/` for `config.run_dir`."""
    config.validate()
    with hold(config.run_dir, "index", option="RUN_DIR"):  # one writer per run
        files = embeddings_files(config.run_dir)
        config = replace(config, projection=projection_folder(config.projection, run=config.run_dir, embeddings=files[0]))
        projection, proj_card = load_projection(config.projection)
        check_run_encoders(files, proj_card, config.projection)
        return _index(config, files, projection, proj_card, quiet=quiet)


def _index(config: IndexConfig, files: list[Path], projection: Projection, proj_card: ProjectionCard, *,
           quiet: bool) -> IndexResult:
    folder, fingerprint = RunLayout(config.run_dir).index_dir, embeddings_fingerprint(files)
    existing = read_index_card(folder)
    if not config.overwrite and up_to_date(existing, fingerprint=fingerprint, projection=proj_card, config=config):
        log.info("%s is up to date; pass --overwrite to rebuild it", folder)
        return IndexResult(existing, skipped=True)  # type: ignore[arg-type]
    if existing is not None and not config.overwrite:
        raise CurateError(f"{folder} was built from other embeddings, projection or settings; pass --overwrite to rebuild it.")
    remove_stale_dirs(folder)
    with atomic_dir(folder) as staging:
        card = build_index(files, projection, proj_card, config, staging=staging, fingerprint=fingerprint, quiet=quiet)
    return IndexResult(card)


def build_index(files: list[Path], projection: Projection, proj_card: ProjectionCard, config: IndexConfig, *,
                staging: Path, fingerprint: str, quiet: bool) -> IndexCard:
    """Project once, then build each side in turn (only one index in memory at a time)."""
    from curate.console import make_progress

    start, seconds, gpu = time.perf_counter(), {}, use_gpu(config.device)
    rows = sum(row_count(p) for p in files)
    plan = choose_plan(config.index_type, rows, projection.out_dim, budget=config.memory_budget, gpu=gpu)
    log.info("indexing %s rows x %d-d per side as %s (about %s each)", f"{rows:,}", projection.out_dim, plan.kind,
             format_size(plan.memory_bytes))
    with tempfile.TemporaryDirectory(prefix=".scratch-", dir=staging) as scratch:
        with make_progress(unit="rows", quiet=quiet) as progress:
            task = progress.add_task("project", total=rows)
            projected = project_run(files, projection, ids_path=staging / IDS_FILE, scratch=Path(scratch),
                                    advance=lambda n: progress.advance(task, n))
        seconds["project"] = time.perf_counter() - start
        entries = {}
        for side in SIDES:
            log.info("building the %s index", side)
            entries[side] = build_side(projected.side(side), plan, config, target=staging / index_file(side), gpu=gpu)
            seconds[side] = sum(entries[side].seconds.values())
    seconds["total"] = time.perf_counter() - start
    card = make_card(config, proj_card, rows=rows, shards=len(files), fingerprint=fingerprint, entries=entries, seconds=seconds)
    write_json_atomic(staging / INDEX_CARD_FILE, card.to_json())
    return card


def make_card(config: IndexConfig, proj_card: ProjectionCard, *, rows: int, shards: int, fingerprint: str,
              entries: dict[str, SideIndex], seconds: dict[str, float]) -> IndexCard:
    """The card `search` and `dedup` trust: the projection by path and fingerprint, the data by fingerprint."""
    versions = dict(library_versions(), faiss=import_faiss().__version__)
    return IndexCard(
        rows=rows, dim=proj_card.out_dim, shards=shards, embeddings_fingerprint=fingerprint,
        projection_dir=str(Path(config.projection).resolve()), projection_fingerprint=proj_card.fingerprint,
        image_encoder=proj_card.image_encoder, text_encoder=proj_card.text_encoder, requested_type=config.index_type,
        memory_budget=config.memory_budget, target_recall=config.target_recall, indexes=entries,
        seconds={k: round(v, 3) for k, v in seconds.items()}, versions=versions,
    )
