"""The reader and writer interfaces every shard format implements, and their registry.

A format is picked by name from `READERS`/`WRITERS` (never by if/elif on strings); unknown
names are refused with the list of known ones.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Iterator

import pyarrow as pa

from curate.errors import CurateError
from curate.io.atomic import PublishOnSuccess
from curate.io.location import Location, RemotePath
from curate.schemas.config.flow import ColumnsConfig
from curate.schemas.sample import Record, Sample


@dataclass(frozen=True)
class Shard:
    """One unit of work: a file (or image folder) in a known format with a run-unique id.

    `path` may be a `RemotePath`; readers then read it in place or a local copy (`streams`).
    `columns` are the user's `--image-column`/`--text-column`/`--key-column` choices, for the
    formats that have columns (the others ignore them).
    """

    path: Location
    format: str
    shard_id: str
    columns: ColumnsConfig = field(default_factory=ColumnsConfig)

    @property
    def source(self) -> str:
        """Where the shard lives, as recorded in the run's tables: an absolute path or a URL."""
        return str(self.path) if isinstance(self.path, RemotePath) else str(self.path.resolve())


class ShardReader(ABC):
    """Streams the records of one shard without decoding images.

    Subclasses set `format_name`, implement `matches` (used by auto-detection), `meta_schema`
    (the Arrow types of the meta columns, known before iterating so writers can stream) and
    `__iter__`.
    """

    format_name: ClassVar[str]
    # reads its shard through `location.open_in_place` (front to back, or by ranges), so a
    # shard at a URL is read where it lies instead of being copied whole first (`io/mirror.py`)
    streams: ClassVar[bool] = False

    def __init__(self, shard: Shard) -> None:
        self.shard = shard

    @classmethod
    @abstractmethod
    def matches(cls, path: Location) -> bool:
        """Whether `path` looks like a shard of this format (cheap: names and headers only)."""

    @classmethod
    def claims(cls, path: Location, columns: ColumnsConfig) -> bool:
        """`matches`, given the user's column choices (formats with columns take them into account)."""
        return cls.matches(path)

    @classmethod
    def shard_id_for(cls, path: Location) -> str:
        """The shard id: the file name without its extensions, stable across invocations."""
        return path.name.split(".")[0] if path.is_file() else path.name

    @classmethod
    def sidecars(cls, path: Location) -> list[Location]:
        """Files beside a shard that its reader also opens, so a local copy brings them along."""
        return []

    @abstractmethod
    def meta_schema(self) -> pa.Schema:
        """Arrow schema of the `meta` dict every yielded sample carries."""

    @abstractmethod
    def __iter__(self) -> Iterator[Record]:
        """Yield every member as a `Sample` or a `SampleError`, in a stable order."""

    def estimate_count(self) -> int | None:
        """Number of samples, if cheaply known; drives the progress bar's ETA."""
        return None

    def count_if_local(self) -> int | None:
        """`estimate_count` for a local shard; None for one at a URL (not fetched just to count)."""
        return None if isinstance(self.shard.path, RemotePath) else self.estimate_count()

    def key(self, member: str) -> str:
        """The sample key contract: `<shard-id>/<member>`."""
        return f"{self.shard.shard_id}/{member}"


class ShardWriter(PublishOnSuccess, ABC):
    """Writes samples into one shard file of a format, atomically, as a context manager."""

    format_name: ClassVar[str]
    suffix: ClassVar[str]

    def __init__(self, path: Path, *, meta_schema: pa.Schema | None = None) -> None:
        self.path = Path(path)
        self.meta_schema = meta_schema or pa.schema([])

    @classmethod
    def subset_member(cls, position: int, key: str) -> str:
        """The member a subset gives the sample at `position` of an output shard: its run key."""
        return key

    @abstractmethod
    def write(self, sample: Sample, *, extra: dict[str, Any] | None = None) -> None:
        """Append one sample; `extra` adds columns (such as `similarity`) beside its meta."""

    @abstractmethod
    def close(self) -> None:
        """Finish the file and move it into place."""

    def abort(self) -> None:
        """Drop the partial output (called when the block raised)."""


READERS: dict[str, type[ShardReader]] = {}
WRITERS: dict[str, type[ShardWriter]] = {}


def register_reader(cls: type[ShardReader]) -> type[ShardReader]:
    """Class decorator adding a reader to the registry under its `format_name`."""
    READERS[cls.format_name] = cls
    return cls


def register_writer(cls: type[ShardWriter]) -> type[ShardWriter]:
    """Class decorator adding a writer to the registry under its `format_name`."""
    WRITERS[cls.format_name] = cls
    return cls


def lookup(registry: dict[str, type], name: str, what: str) -> type:
    """Return `registry[name]` or refuse with the list of known names."""
    try:
        return registry[name]
    except KeyError:
        known = ", ".join(sorted(registry))
        raise CurateError(f"Unknown {what} '{name}'; known: {known}.") from None
