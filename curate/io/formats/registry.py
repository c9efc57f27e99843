"""Every shard format, registered: take `READERS` and `WRITERS` from here.

Each format module registers its reader and writer when imported; importing this module
imports them all, so a lookup by name sees every format (and refuses unknown names with the
list of known ones).
"""

from __future__ import annotations

from typing import Any

from curate.io.formats import (  # noqa: F401  (each registers itself)
    arrow,
    diffusiondb,
    imagefolder,
    parquet,
    webdataset,
)
from curate.io.formats.base import READERS, WRITERS, Shard, lookup

__all__ = ["READERS", "WRITERS", "lookup", "sidecars_of", "streams_in_place"]


def sidecars_of(shard: Shard) -> list[Any]:
    """Files beside a shard that its reader also opens (a DiffusionDB part's JSON and metadata)."""
    reader = READERS.get(shard.format)
    return reader.sidecars(shard.path) if reader is not None else []


def streams_in_place(shard: Shard) -> bool:
    """Whether the shard's reader reads a URL where it lies (tars, Parquet) rather than a local copy."""
    reader = READERS.get(shard.format)
    return reader is not None and reader.streams
