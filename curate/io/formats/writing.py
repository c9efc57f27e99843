"""The atomic part every shard writer shares: build under a temporary name, rename on close.

A killed run therefore leaves either no shard or a whole one (plus a stale temporary that
`remove_stale_tmp` sweeps), never a half-written shard that a rerun would skip as done.
"""

from __future__ import annotations

import os
import shutil
from abc import abstractmethod
from pathlib import Path

import pyarrow as pa

from curate.io.formats.base import ShardWriter
from curate.io.location import tmp_name


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
