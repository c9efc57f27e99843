"""Append-only float16 vector files read back as memory-mapped arrays.

Training needs random batches over every pair for several epochs, but a run's embeddings
may not fit in memory. One streaming pass copies the vectors into raw `.f16` files on local
disk; epochs then gather shuffled batches from `np.memmap` views, so resident memory is one
batch plus whatever the OS page cache chooses to keep.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np


@dataclass
class PairVectors:
    """Image and text vectors of the same pairs, row-aligned (memmaps or in-memory arrays)."""

    image: np.ndarray
    text: np.ndarray

    def __len__(self) -> int:
        return len(self.image)

    def head(self, rows: int) -> "PairVectors":
        return PairVectors(self.image[:rows], self.text[:rows])

    def gather(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The float32 vectors of `rows` (sorted first: sequential reads from the memmap)."""
        rows = np.sort(rows)
        return self.image[rows].astype(np.float32), self.text[rows].astype(np.float32)


@dataclass
class PairRows:
    """Some rows of a `PairVectors`, by row number: a split or a fold, without copying vectors."""

    pairs: PairVectors
    rows: np.ndarray  # ascending row numbers into `pairs`

    def __len__(self) -> int:
        return len(self.rows)

    def head(self, rows: int) -> PairVectors:
        """The first `rows` of these rows, in memory."""
        chosen = self.rows[:rows]
        return PairVectors(self.pairs.image[chosen], self.pairs.text[chosen])

    def gather(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The float32 vectors of `rows` (positions among these rows), in ascending order."""
        return self.pairs.gather(self.rows[rows])


class PairSpill:
    """Writes (image, text) float16 rows to two raw files; `open()` maps them back."""

    def __init__(self, folder: Path, name: str, *, image_dim: int, text_dim: int) -> None:
        self.paths = (Path(folder) / f"{name}.image.f16", Path(folder) / f"{name}.text.f16")
        self.dims = (image_dim, text_dim)
        self.rows = 0
        self._files: list[BinaryIO] = [open(p, "wb") for p in self.paths]

    def append(self, image: np.ndarray, text: np.ndarray) -> None:
        for handle, block in zip(self._files, (image, text)):
            handle.write(np.ascontiguousarray(block, dtype=np.float16).tobytes())
        self.rows += len(image)

    def open(self) -> PairVectors:
        """Close the writers and map the files read-only (an empty spill maps to empty arrays)."""
        for handle in self._files:
            handle.close()
        image, text = (self._map(path, dim) for path, dim in zip(self.paths, self.dims))
        return PairVectors(image, text)

    def _map(self, path: Path, dim: int) -> np.ndarray:
        if self.rows == 0:
            return np.zeros((0, dim), dtype=np.float16)
        return np.memmap(path, dtype=np.float16, mode="r", shape=(self.rows, dim))
