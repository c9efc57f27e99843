"""The training data of `curate train`: one streaming pass over a run's embeddings.

The pass checks every file names the same encoders, assigns each pair to the train or the
validation split, and to one of `--folds` folds, by hashing its key (stable across runs,
reruns and added shards: a pair never moves between splits), spills the vectors to one
memory-mapped file, accumulates the per-dimension mean and std of the train split and of
each fold, and fingerprints exactly which pairs were used.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from curate.errors import CurateError
from curate.io.embeddings import embeddings_info, iter_batches, vector_dims, vectors
from curate.io.spill import PairRows, PairSpill, PairVectors
from curate.models.folds import fold_of
from curate.schemas.projection import TrainingData
from curate.schemas.tables import EncoderInfo

log = logging.getLogger("curate")
SPLIT_SALT = b"curate-validation-split"


def is_validation(key: str, fraction: float) -> bool:
    """A key's split is a pure function of the key: 64 hash bits compared with `fraction`."""
    digest = hashlib.blake2b(key.encode(), digest_size=8, key=SPLIT_SALT).digest()
    return int.from_bytes(digest, "big") < fraction * 2**64


def common_encoders(files: list[Path]) -> tuple[EncoderInfo, EncoderInfo]:
    """The one (image, text) encoder pair all files share; refuses a run that mixes two."""
    first = embeddings_info(files[0])
    for path in files:
        info = embeddings_info(path)
        if (info.image_encoder.signature(), info.text_encoder.signature()) != (
            first.image_encoder.signature(), first.text_encoder.signature()
        ):
            raise CurateError(
                f"{files[0].parent} mixes encoders: {files[0].name} has {first.image_encoder.model} + "
                f"{first.text_encoder.model}, {path.name} has {info.image_encoder.model} + {info.text_encoder.model}; "
                "train on embeddings of one encoder pair."
            )
        if vector_dims(path) != (info.image_encoder.dim, info.text_encoder.dim):
            raise CurateError(f"{path} stores vectors whose dimensions differ from its metadata; re-embed it.")
    return first.image_encoder, first.text_encoder


@dataclass
class RunningMoments:
    """Per-dimension mean and std accumulated batch by batch in float64."""

    dim: int
    count: int = 0
    total: np.ndarray = field(init=False)
    squares: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.total, self.squares = np.zeros(self.dim), np.zeros(self.dim)

    def add(self, block: np.ndarray) -> None:
        block = block.astype(np.float64)
        self.count += len(block)
        self.total += block.sum(axis=0)
        self.squares += np.square(block).sum(axis=0)

    def mean_std(self) -> tuple[np.ndarray, np.ndarray]:
        mean = self.total / max(self.count, 1)
        return mean, np.sqrt(np.maximum(self.squares / max(self.count, 1) - mean**2, 0.0))

    @classmethod
    def merged(cls, parts: list["RunningMoments"]) -> "RunningMoments":
        """The moments of the union of the parts' rows (a fold's training set: the other folds)."""
        out = cls(parts[0].dim)
        for part in parts:
            out.count += part.count
            out.total += part.total
            out.squares += part.squares
        return out


@dataclass
class TrainingSplit:
    """Every pair as one memory-mapped spill, which rows are held out, each row's fold, the
    statistics of the train split and of each fold, and the data's identity."""

    pairs: PairVectors
    in_val: np.ndarray  # bool per row: held out for the validation metrics
    fold: np.ndarray  # int per row: its fold (all 0 without folds)
    image_moments: RunningMoments
    text_moments: RunningMoments
    fold_moments: list[tuple[RunningMoments, RunningMoments]]  # (image, text) over all rows of each fold
    data: TrainingData

    @property
    def train(self) -> PairRows:
        return PairRows(self.pairs, np.flatnonzero(~self.in_val))

    @property
    def val(self) -> PairRows:
        return PairRows(self.pairs, np.flatnonzero(self.in_val))

    def outside_fold(self, k: int) -> PairRows:
        """What projection k trains on: every pair of the other folds (validation pairs too)."""
        return PairRows(self.pairs, np.flatnonzero(self.fold != k))

    def inside_fold(self, k: int) -> PairRows:
        """What projection k never sees, and later scores."""
        return PairRows(self.pairs, np.flatnonzero(self.fold == k))

    def moments_outside_fold(self, k: int) -> tuple[RunningMoments, RunningMoments]:
        others = [m for j, m in enumerate(self.fold_moments) if j != k]
        return RunningMoments.merged([m[0] for m in others]), RunningMoments.merged([m[1] for m in others])


class SplitWriter:
    """Spills streamed batches, noting each row's split and fold and accumulating statistics."""

    def __init__(self, scratch: Path, *, dims: tuple[int, int], val_fraction: float, folds: int = 1) -> None:
        self.val_fraction, self.folds = val_fraction, folds
        self.spill = PairSpill(scratch, "pairs", image_dim=dims[0], text_dim=dims[1])
        self.in_val: list[np.ndarray] = []
        self.fold: list[np.ndarray] = []
        self.image_moments, self.text_moments = RunningMoments(dims[0]), RunningMoments(dims[1])
        self.fold_moments = [(RunningMoments(dims[0]), RunningMoments(dims[1])) for _ in range(folds)]
        self.digest = hashlib.sha256()
        self.dropped = 0

    def add_file(self, path: Path) -> None:
        """The file's identity (name, encoders, rows) enters the fingerprint before its keys."""
        info = embeddings_info(path)
        self.digest.update(f"{path.name}|{info.image_encoder.signature()}|{info.text_encoder.signature()}\n".encode())
        for batch in iter_batches(path, columns=("key", "image_emb", "text_emb")):
            self.add_batch(batch.column(0).to_pylist(), vectors(batch.column(1)), vectors(batch.column(2)))

    def add_batch(self, keys: list[str], image: np.ndarray, text: np.ndarray) -> None:
        finite = np.isfinite(image).all(axis=1) & np.isfinite(text).all(axis=1)
        self.dropped += int((~finite).sum())
        in_val = np.array([is_validation(k, self.val_fraction) for k in keys], dtype=bool)
        for key, val, ok in zip(keys, in_val, finite):
            if ok:
                self.digest.update(f"{'v' if val else 't'}{key}\n".encode())
        train_rows = finite & ~in_val
        self.spill.append(image[finite], text[finite])
        self.in_val.append(in_val[finite])
        self.image_moments.add(image[train_rows])
        self.text_moments.add(text[train_rows])
        fold = fold_of([k for k, ok in zip(keys, finite) if ok], self.folds)
        self.fold.append(fold)
        if self.folds > 1:
            for k, (image_moments, text_moments) in enumerate(self.fold_moments):
                rows = np.flatnonzero(finite)[fold == k]
                image_moments.add(image[rows])
                text_moments.add(text[rows])

    def finish(self, files: int) -> TrainingSplit:
        in_val = np.concatenate(self.in_val) if self.in_val else np.zeros(0, dtype=bool)
        fold = np.concatenate(self.fold) if self.fold else np.zeros(0, dtype=np.int64)
        data = TrainingData(
            fingerprint=self.digest.hexdigest(), files=files, train_pairs=int((~in_val).sum()),
            val_pairs=int(in_val.sum()), dropped_non_finite=self.dropped,
        )
        return TrainingSplit(self.spill.open(), in_val, fold, self.image_moments, self.text_moments,
                             self.fold_moments, data)


def split_embeddings(files: list[Path], scratch: Path, *, dims: tuple[int, int], val_fraction: float,
                     folds: int = 1) -> TrainingSplit:
    """Stream every file once into the spill; refuses splits (and folds) too small to train or judge."""
    writer = SplitWriter(scratch, dims=dims, val_fraction=val_fraction, folds=folds)
    for path in files:
        writer.add_file(path)
    split = writer.finish(len(files))
    if split.data.dropped_non_finite:
        log.warning("dropped %d pairs with non-finite vectors", split.data.dropped_non_finite)
    if len(split.train) < 2 or len(split.val) < 2:
        raise CurateError(
            f"Too few pairs to train and validate ({len(split.train)} train, {len(split.val)} validation); "
            "embed more pairs or change --val-fraction."
        )
    smallest = min(np.bincount(split.fold, minlength=folds)) if folds > 1 else None
    if smallest is not None and smallest < 2:
        raise CurateError(f"Too few pairs for --folds {folds}: a fold holds {smallest} pairs; use fewer folds "
                          "(--folds 1 turns out-of-fold scoring off).")
    return split
