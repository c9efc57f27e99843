"""Shard formats: readers that yield samples, writers that produce shards, detection.

Importing the package imports every format module, which registers its reader and writer
in `READERS`/`WRITERS`.
"""

from curate.io.formats import diffusiondb, imagefolder, parquet, webdataset  # noqa: F401  (registries)
from curate.io.formats.base import (
    READERS,
    WRITERS,
    Shard,
    ShardReader,
    ShardWriter,
    lookup,
)
from curate.io.formats.detect import detect_format, find_shards, reader_for

__all__ = [
    "READERS",
    "WRITERS",
    "Shard",
    "ShardReader",
    "ShardWriter",
    "detect_format",
    "find_shards",
    "lookup",
    "reader_for",
]
