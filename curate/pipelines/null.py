"""The null distribution of a scored run: what an unrelated caption scores, on this run's scale.

A `--min-sim` value means something different for every projection and objective; what stays
the same is a question about the run itself: how often does the image of one pair, shown the
caption of another pair of the same run, score at least this high? `score` answers it once
per scoring projection, before the shards are scored:

1. **Sample.** The pairs with the `--null-pairs` smallest salted hashes of their keys are
   drawn from every embeddings file of the run (one read of the key columns; the choice
   depends on the keys and the seed, never on the file order or the sharding).
2. **Recombine.** In hash order, each sampled image is shown the caption of the next sampled
   pair, and for a run with fewer pairs than asked for, of the next few (all other captions
   at most), so the null holds at least `--null-pairs` mismatched pairs, or every one there
   is. With out-of-fold projections (`train --folds`), pairs are recombined within their
   fold and scored by that fold's projection: a mismatch it never saw, as the pairs it scores.
3. **Score** them with the same projection(s) and write `RUN_DIR/null/<scoring>.parquet`
   atomically (`NullInfo` in its metadata: seed, size, folds, the embeddings it came from,
   and a digest of its scores).

Every pair's `false_match_rate` is then the share of its fold's null that scores at least as
high as the pair: `filter --max-false-match 0.01` keeps pairs that fewer than 1% of unrelated
captions would match as well, whatever the projection. A rerun with the same projection and
embeddings finds the null there and reuses it (a new projection or a changed run draws anew);
drawing it again gives the same bytes.
"""

from __future__ import annotations

import hashlib
import logging
import math
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from curate.io.embeddings import key_column, parquet_file, row_count, take_rows, vectors
from curate.io.location import Location, RemotePath
from curate.io.tables import ParquetTableWriter
from curate.models.folds import PairScorer, key_hash
from curate.schemas.arrow_schemas import null_schema
from curate.schemas.layout import RunLayout
from curate.schemas.tables import METADATA_KEY, NullInfo
from curate.versions import library_versions

log = logging.getLogger("curate")
NULL_SALT = b"curate-null:"
NON_FINITE_SCORE = -1.0  # as `score` floors a pair whose vectors overflowed


@dataclass
class NullDistribution:
    """The null's scores, sorted, per fold: what a pair's `false_match_rate` is counted against."""

    info: NullInfo
    by_fold: tuple[np.ndarray, ...]  # float32, ascending

    def rates(self, folds: np.ndarray, similarity: np.ndarray) -> np.ndarray:
        """Share of the fold's null scoring >= each similarity (float64); NaN for a fold without a null."""
        out = np.full(len(similarity), np.nan)
        for k, null in enumerate(self.by_fold):
            rows = np.flatnonzero(folds == k)
            if len(rows) and len(null):
                below = np.searchsorted(null, similarity[rows].astype(np.float32), side="left")
                out[rows] = (len(null) - below) / len(null)
        return out


@dataclass
class Sample:
    """Sampled pairs in hash order: where each lives (file index, row) and its key."""

    keys: np.ndarray  # str
    files: np.ndarray  # int64 index into the run's files
    rows: np.ndarray  # int64 row number in its file


def null_for(files: list[Location], scorer: PairScorer, *, scoring: str, layout: RunLayout, size: int, seed: int,
             overwrite: bool = False) -> NullDistribution:
    """The run's null for this scoring projection: the one on disk if it was drawn from these
    embeddings with this seed and size, else drawn, scored and written now."""
    want = NullInfo(projection=scoring, folds=scorer.folds, seed=seed, size=size, pairs=0, images=0,
                    embeddings=embeddings_digest(files))
    path = layout.null(scoring)
    found = None if overwrite else read_null(path)
    if found is not None and same_draw(found.info, want):
        log.info("reusing the null distribution %s (%d mismatched pairs)", path, found.info.pairs)
        return found
    sample = sample_pairs(files, size=size, seed=seed)
    table, info = score_null(files, sample, scorer, want=want)
    write_null(path, table, info)
    log.info("scored %d mismatched pairs of %d sampled pairs as the null (%s)", info.pairs, info.images, path)
    return distribution(table, info)


def same_draw(found: NullInfo, want: NullInfo) -> bool:
    """Whether a null on disk is the one `want` describes (scores and versions aside)."""
    keys = ("projection", "folds", "seed", "size", "embeddings", "schema_version")
    return all(getattr(found, k) == getattr(want, k) for k in keys)


def embeddings_digest(files: list[Location]) -> str:
    """sha256 over each embeddings file's name, rows and bytes: changes when a shard is added or redone."""
    digest = hashlib.sha256()
    for path in sorted(files, key=lambda p: p.name):
        digest.update(f"{path.name}|{row_count(path)}|{_size(path)}\n".encode())
    return digest.hexdigest()


def _size(path: Location) -> int:
    return int(path.fs.size(path.path)) if isinstance(path, RemotePath) else Path(path).stat().st_size


def sample_pairs(files: list[Location], *, size: int, seed: int) -> Sample:
    """The `size` pairs with the smallest salted key hashes (ties by key), in that order."""
    salt = NULL_SALT + str(seed).encode()
    best = _empty_sample()
    hashes = np.zeros(0, dtype=np.uint64)
    for index, path in enumerate(files):
        keys = np.array(key_column(path), dtype=object)
        found = np.fromiter((key_hash(k, salt) for k in keys), dtype=np.uint64, count=len(keys))
        hashes = np.concatenate([hashes, found])
        best = Sample(np.concatenate([best.keys, keys]), np.concatenate([best.files, np.full(len(keys), index)]),
                      np.concatenate([best.rows, np.arange(len(keys), dtype=np.int64)]))
        order = np.lexsort((best.keys.astype(str), hashes))[:size] if len(hashes) else np.zeros(0, dtype=np.int64)
        best, hashes = Sample(best.keys[order], best.files[order], best.rows[order]), hashes[order]
    return best


def _empty_sample() -> Sample:
    return Sample(np.zeros(0, dtype=object), np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64))


def recombined(members: np.ndarray, *, shifts: int) -> tuple[np.ndarray, np.ndarray]:
    """(image rows, caption rows): each member's image with the caption `s` members on, s = 1..shifts."""
    shifts = min(shifts, len(members) - 1)
    if shifts < 1:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    image = np.tile(members, shifts)
    text = np.concatenate([np.roll(members, -s) for s in range(1, shifts + 1)])
    return image, text


def sample_vectors(files: list[Location], sample: Sample) -> tuple[np.ndarray, np.ndarray]:
    """The float16 image and text vectors of the sampled pairs, in sample order."""
    image: list[np.ndarray] = []
    text: list[np.ndarray] = []
    where: list[np.ndarray] = []
    for index in np.unique(sample.files):
        chosen = np.flatnonzero(sample.files == index)
        table = take_rows(files[index], sample.rows[chosen], ["image_emb", "text_emb"])
        image.append(vectors(table.column("image_emb")))
        text.append(vectors(table.column("text_emb")))
        where.append(chosen)
    if not where:
        return np.zeros((0, 0), dtype=np.float16), np.zeros((0, 0), dtype=np.float16)
    order = np.argsort(np.concatenate(where))
    return np.concatenate(image)[order], np.concatenate(text)[order]


def score_null(files: list[Location], sample: Sample, scorer: PairScorer, *, want: NullInfo) -> tuple[pa.Table, NullInfo]:
    """Recombine the sample within each fold and score the mismatched pairs with that fold's projection."""
    image, text = sample_vectors(files, sample)
    fold = scorer.fold_of(sample.keys.tolist())
    shifts = math.ceil(want.size / len(sample.keys)) if len(sample.keys) else 0
    parts: list[dict[str, np.ndarray]] = []
    for k, model in enumerate(scorer.models):
        image_rows, text_rows = recombined(np.flatnonzero(fold == k), shifts=shifts)
        if not len(image_rows):
            continue
        sims = model.similarity(image[image_rows], text[text_rows])
        sims[~np.isfinite(sims)] = NON_FINITE_SCORE
        parts.append({"fold": np.full(len(sims), k, dtype=np.int32), "image_key": sample.keys[image_rows],
                      "text_key": sample.keys[text_rows], "similarity": sims})
    schema = null_schema(want).remove_metadata()
    table = pa.Table.from_pylist([], schema=schema) if not parts else pa.table(
        {f.name: pa.array(np.concatenate([p[f.name] for p in parts]), f.type) for f in schema}, schema=schema)
    info = replace(want, pairs=table.num_rows, images=len(sample.keys), versions=library_versions())
    return table, replace(info, digest=null_digest(table, info))


def null_digest(table: pa.Table, info: NullInfo) -> str:
    """sha256 of the folds and the scores (the bytes rates are computed from)."""
    digest = hashlib.sha256(f"{info.projection}|{info.folds}|{info.seed}|{info.size}\n".encode())
    digest.update(np.ascontiguousarray(table.column("fold").to_numpy()).tobytes())
    digest.update(np.ascontiguousarray(table.column("similarity").to_numpy()).tobytes())
    return digest.hexdigest()


def write_null(path: Location, table: pa.Table, info: NullInfo) -> None:
    """Published atomically, the NullInfo in its schema metadata."""
    writer = ParquetTableWriter(path, null_schema(info))
    with writer:
        writer.write_rows({name: table.column(name) for name in table.column_names})


def read_null(path: Location) -> NullDistribution | None:
    """The null at `path`, or None when there is none (or it is not one this version reads)."""
    try:
        if not path.exists():
            return None
        with parquet_file(path) as parquet:
            info = NullInfo.from_bytes(parquet.schema_arrow.metadata[METADATA_KEY])
            table = parquet.read(columns=["fold", "similarity"])
    except (KeyError, TypeError, ValueError, OSError, pa.ArrowInvalid):
        return None
    return distribution(table, info)


def distribution(table: pa.Table, info: NullInfo) -> NullDistribution:
    fold = table.column("fold").to_numpy()
    sims = table.column("similarity").to_numpy().astype(np.float32)
    return NullDistribution(info, tuple(np.sort(sims[fold == k]) for k in range(info.folds)))


def null_scores(run: Path, info: NullInfo) -> np.ndarray:
    """Every score of a run's null (float32), for figures and statistics."""
    return pq.read_table(RunLayout(Path(run)).null(info.projection), columns=["similarity"]).column(0).to_numpy()
