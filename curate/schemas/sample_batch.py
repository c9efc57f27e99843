"""Samples as Arrow columns: what a column format hands over when rows are selected by key.

A `SampleBatch` is a run of `Sample`s without a Python object per row: the same key, image
bytes, caption and meta, one Arrow array each, so a Parquet source can be filtered into a
Parquet subset at the speed Arrow reads and writes it (`subsets/fast_copy.py`). Row `i` of a
batch is the sample a reader would have yielded in that position.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa


@dataclass(frozen=True)
class SampleBatch:
    """`keys` (string, `<shard-id>/<member>`), `images` (binary, null where none), `texts`
    (string), `meta` (the reader's meta columns); every column of the same length."""

    keys: pa.Array
    images: pa.Array
    texts: pa.Array
    meta: pa.Table

    def __len__(self) -> int:
        return len(self.keys)

    def slice(self, offset: int, length: int) -> "SampleBatch":
        """Rows `offset` to `offset + length` (zero-copy)."""
        return SampleBatch(self.keys.slice(offset, length), self.images.slice(offset, length),
                           self.texts.slice(offset, length), self.meta.slice(offset, length))

    def with_keys(self, keys: pa.Array) -> "SampleBatch":
        """The same rows under other keys (a writer's member names)."""
        return SampleBatch(keys, self.images, self.texts, self.meta)

    def with_meta(self, meta: pa.Table) -> "SampleBatch":
        return SampleBatch(self.keys, self.images, self.texts, meta)
