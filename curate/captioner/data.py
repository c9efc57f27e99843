"""The pairs a captioner learns from or is judged on: read from a subset, split, featurised.

A subset is any set of shards `filter` writes (Parquet, WebDataset, image folder); every
format is read through the shard readers. With a frozen image tower the images are encoded
once and only their features are kept; `--from-embeddings` skips even that by joining the
stored `image_emb` vectors of a run on the sample key.
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np

import curate.io.formats.registry  # noqa: F401  (fills the format registries)
from curate.errors import CurateError
from curate.io.embeddings import (
    embeddings_files,
    embeddings_info,
    iter_batches,
    vectors,
)
from curate.io.formats.detect import find_shards, reader_for
from curate.models.image_encoder import ImageEncoder
from curate.models.preprocess import decode_batch
from curate.runtime.pool import OrderedPool
from curate.schemas.sample import Sample

log = logging.getLogger("curate")


@dataclass
class CaptionPairs:
    """Keys and reference prompts, with image features (frozen tower) or image bytes (trained tower)."""

    keys: list[str]
    texts: list[str]
    features: np.ndarray | None = None
    images: list[bytes] = field(default_factory=list)
    skipped: int = 0  # samples without an image, a prompt, a decodable picture or a stored vector
    reasons: Counter[str] = field(default_factory=Counter)  # why samples were left out, counted

    def __len__(self) -> int:
        return len(self.keys)

    def left_out(self, reasons: Counter[str]) -> "CaptionPairs":
        """These pairs with the reader's own skips (no image, no prompt) added to the counts."""
        self.reasons.update(reasons)
        self.skipped = sum(self.reasons.values())
        return self

    def subset(self, rows: np.ndarray) -> "CaptionPairs":
        """The pairs at `rows` (indices), as a new object."""
        return CaptionPairs(
            keys=[self.keys[i] for i in rows], texts=[self.texts[i] for i in rows],
            features=None if self.features is None else self.features[rows],
            images=[self.images[i] for i in rows] if self.images else [],
        )


def iter_samples(
    inputs: list[Path], *, format: str | None = None, need_text: bool = True, skipped: Counter[str] | None = None
) -> Iterator[Sample]:
    """Usable samples (an image, and unless `need_text` is off a non-blank prompt) of every shard, in order.

    The others are counted in `skipped` by reason (`unreadable_record`, `no_image`, `no_prompt`).
    """
    counts = skipped if skipped is not None else Counter()
    for shard in find_shards(inputs, format=format):
        for record in reader_for(shard):
            if not isinstance(record, Sample):
                counts["unreadable_record"] += 1
            elif record.image is None:
                counts["no_image"] += 1
            elif need_text and not (record.text and record.text.strip()):
                counts["no_prompt"] += 1
            else:
                yield record


def batched(items: Iterator[Sample], size: int) -> Iterator[list[Sample]]:
    batch: list[Sample] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def encode_samples(
    samples: Iterator[Sample], encoder: ImageEncoder, *, batch_size: int, workers: int, limit: int | None = None
) -> CaptionPairs:
    """Decode (in workers) and encode every sample; undecodable images are counted, not fatal."""
    keys: list[str] = []
    texts: list[str] = []
    parts: list[np.ndarray] = []
    skipped = 0
    reasons: Counter[str] = Counter()
    stream = _limited(samples, limit)
    with OrderedPool(workers) as pool:
        for batch, decoded in pool.map(decode_batch, batched(stream, batch_size), args=(encoder.preprocess,),
                                       payload=lambda b: [s.image for s in b]):
            skipped += len(decoded.failed)
            for _, kind, _ in decoded.failed:
                reasons[kind] += 1
            ok = [batch[i] for i in decoded.ok]
            if ok:
                parts.append(encoder.encode(decoded.pixels))
                keys += [s.key for s in ok]
                texts += [s.text for s in ok]  # type: ignore[misc]
    features = np.concatenate(parts) if parts else np.zeros((0, encoder.dim), dtype=np.float32)
    return CaptionPairs(keys=keys, texts=texts, features=features, skipped=skipped, reasons=reasons)


def collect_bytes(samples: Iterator[Sample], *, limit: int | None = None) -> CaptionPairs:
    """Keep the encoded images: a trained image tower needs pixels every epoch."""
    keys, texts, images = [], [], []
    for sample in _limited(samples, limit):
        keys.append(sample.key)
        texts.append(sample.text)
        images.append(sample.image)
    return CaptionPairs(keys=keys, texts=texts, images=images)  # type: ignore[arg-type]


def _limited(samples: Iterator[Sample], limit: int | None) -> Iterator[Sample]:
    for n, sample in enumerate(samples):
        if limit is not None and n >= limit:
            return
        yield sample


def join_embeddings(samples: Iterator[Sample], run: Path, *, limit: int | None = None) -> tuple[CaptionPairs, str]:
    """Pairs whose keys the run embedded, with the stored image vectors; and the image encoder's name."""
    files = embeddings_files(run)
    stored: dict[str, np.ndarray] = {}
    for path in files:
        for batch in iter_batches(path, columns=["key", "image_emb"]):
            stored.update(zip(batch.column(0).to_pylist(), vectors(batch.column(1))))
    keys, texts, rows, missing = [], [], [], 0
    for sample in _limited(samples, limit):
        vec = stored.get(sample.key)
        if vec is None:
            missing += 1
            continue
        keys.append(sample.key)
        texts.append(sample.text)
        rows.append(vec)
    if not rows and missing:
        raise CurateError(f"None of the subset's keys are in {run}/embeddings; pass the run the subset was filtered from.")
    if missing:
        log.warning("%d subset samples have no stored embedding in %s; they are left out", missing, run)
    image_model = embeddings_info(files[0]).image_encoder.model
    dim = embeddings_info(files[0]).image_encoder.dim
    features = np.stack(rows).astype(np.float32) if rows else np.zeros((0, dim), dtype=np.float32)
    pairs = CaptionPairs(keys=keys, texts=texts, features=features, skipped=missing,
                         reasons=Counter(no_stored_vector=missing))
    return pairs, image_model  # type: ignore[arg-type]


def is_validation(key: str, fraction: float) -> bool:
    """Deterministic by key alone: a pair stays on its side whatever the order or the run."""
    digest = hashlib.sha1(key.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < fraction


def refuse_empty(pairs: CaptionPairs, subset: Path) -> None:
    """No usable pair at all: say why each sample was left out, not that a split came out empty."""
    if len(pairs):
        return
    if not pairs.reasons:
        raise CurateError(f"{subset} holds no samples; pass a subset `curate filter` wrote.")
    counted = ", ".join(f"{n} {reason.replace('_', ' ')}" for reason, n in pairs.reasons.most_common())
    raise CurateError(f"No usable image-prompt pair in {subset}: {pairs.skipped} samples left out ({counted}).")


def split_pairs(pairs: CaptionPairs, *, val_fraction: float) -> tuple[CaptionPairs, CaptionPairs]:
    """(train, validation) by key hash; refuses a split that leaves either side empty."""
    val = np.array([is_validation(k, val_fraction) for k in pairs.keys], dtype=bool)
    if val.all() or not val.any():
        raise CurateError(
            f"{len(pairs)} pairs give an empty {'training' if val.all() else 'validation'} split at "
            f"--val-fraction {val_fraction}; use more pairs or another fraction."
        )
    return pairs.subset(np.flatnonzero(~val)), pairs.subset(np.flatnonzero(val))
