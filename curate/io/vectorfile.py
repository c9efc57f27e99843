"""A raw float32 matrix on disk, appended a block at a time and read back in slices.

Building an index reads the projected vectors several times (training sample, adding,
exact neighbours for the recall check). Projecting once into such a file keeps every later
pass cheap. Reads go through plain file reads, not a memory map, so resident memory stays
one slice whatever the file's size.
"""

from __future__ import annotations

from pathlib import Path
from typing import BinaryIO, Iterator

import numpy as np

DTYPE = np.dtype(np.float32)
CHUNK_ROWS = 65536


class VectorFile:
    """`rows` x `dim` float32 values in row order at `path`."""

    def __init__(self, path: Path, dim: int) -> None:
        self.path, self.dim = Path(path), dim
        self._writer: BinaryIO | None = open(self.path, "wb")
        self.rows = 0

    @property
    def row_bytes(self) -> int:
        return self.dim * DTYPE.itemsize

    def append(self, block: np.ndarray) -> None:
        assert self._writer is not None, "append after finish()"
        self._writer.write(np.ascontiguousarray(block, dtype=DTYPE).tobytes())
        self.rows += len(block)

    def finish(self) -> "VectorFile":
        """Close the writer; the file is read-only from here on."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        return self

    def read(self, start: int, stop: int) -> np.ndarray:
        """Rows [start, stop) as a fresh (n, dim) array."""
        stop = min(stop, self.rows)
        count = max(stop - start, 0) * self.dim
        data = np.fromfile(self.path, dtype=DTYPE, count=count, offset=start * self.row_bytes)
        return data.reshape(-1, self.dim)

    def chunks(self, rows: int = CHUNK_ROWS) -> Iterator[tuple[int, np.ndarray]]:
        """(first row, block) pairs covering the file in order."""
        for start in range(0, self.rows, rows):
            yield start, self.read(start, start + rows)

    def take(self, ids: np.ndarray, *, rows: int = CHUNK_ROWS) -> np.ndarray:
        """The rows `ids` (any order, no repeats needed), gathered in one sequential pass."""
        ids = np.asarray(ids, dtype=np.int64)
        order = np.argsort(ids, kind="stable")
        out = np.empty((len(ids), self.dim), dtype=DTYPE)
        sorted_ids = ids[order]
        for start, block in self.chunks(rows):
            lo, hi = np.searchsorted(sorted_ids, [start, start + len(block)])
            out[order[lo:hi]] = block[sorted_ids[lo:hi] - start]
        return out
