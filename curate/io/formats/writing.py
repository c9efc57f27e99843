"""What every shard writer shares: an atomic output, and one way of naming meta columns.

Outputs are built under a temporary name and renamed on close, so a killed run leaves either
no shard or a whole one (plus a stale temporary that `remove_stale_tmp` sweeps), never a
half-written shard that a rerun would skip as done.

A source's meta column named like a column a writer fills itself (`key`, `image`,
`caption`, `file_name`) or like an `extra` column (`similarity`, `source_key`) is written
as `<name>_from_source` by every writer alike, so it never overwrites the writer's own column
nor is overwritten by it.
"""

from __future__ import annotations

import os
import shutil
from abc import abstractmethod
from pathlib import Path
from typing import Any

import pyarrow as pa

from curate.io.formats.base import ShardWriter
from curate.io.formats.meta import renamed_columns, renamed_schema
from curate.io.location import tmp_name
from curate.schemas.sample import Sample

# The columns some writer fills itself; meta of these names is renamed in every format alike.
WRITER_COLUMNS = frozenset({"key", "image", "caption", "file_name"})


class AtomicShardWriter(ShardWriter):
    """A `ShardWriter` that writes `self.tmp` and moves it onto `self.path` in `close`.

    `extra_schema` optionally fixes the types of `extra` columns (such as a float32
    `similarity`); formats that store text ignore it.
    """

    def __init__(
        self,
        path: Path,
        *,
        meta_schema: pa.Schema | None = None,
        extra_schema: pa.Schema | None = None,
    ) -> None:
        super().__init__(path, meta_schema=meta_schema)
        self.extra_schema = extra_schema or pa.schema([])
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = tmp_name(self.path)
        self.count = 0
        self._closed = False
        self._open()

    def _open(self) -> None:
        """Create the temporary output (a file handle, a folder); called once, by `__init__`."""

    def written_meta_schema(self) -> pa.Schema:
        """The meta schema under the names the meta columns are written with."""
        return renamed_schema(self.meta_schema, WRITER_COLUMNS | set(self.extra_schema.names))

    @staticmethod
    def columns_of(sample: Sample, extra: dict[str, Any] | None) -> dict[str, Any]:
        """The sample's meta and `extra` as written: clashing meta names suffixed `_from_source`."""
        extra = extra or {}
        names = renamed_columns(sample.meta, WRITER_COLUMNS | set(extra))
        return {**{names[k]: v for k, v in sample.meta.items()}, **extra}

    @abstractmethod
    def _finish(self) -> None:
        """Complete the temporary output (flush buffers, write indexes, close handles)."""

    def _release(self) -> None:
        """Close open handles without completing the output (abort path)."""

    def close(self) -> None:
        if self._closed:
            return
        self._finish()
        _replace(self.tmp, self.path)
        self._closed = True

    def abort(self) -> None:
        if self._closed:
            return
        self._release()
        _remove(self.tmp)
        self._closed = True


def _replace(tmp: Path, final: Path) -> None:
    """Rename `tmp` onto `final`; a folder shard replaces an older folder of the same name."""
    if final.is_dir() and not final.is_symlink():
        shutil.rmtree(final)
    os.replace(tmp, final)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)
