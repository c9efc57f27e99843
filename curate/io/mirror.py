"""Local copies of remote shards, for the readers that cannot read a URL where it lies.

Tar and Parquet readers read remote shards in place (`location.open_in_place`): those pass
through here untouched (`in_place`). A zip is read member by member from its end and a folder
shard is many files, so a worker copies such a shard (and the sidecar files its reader also
opens, such as DiffusionDB's `metadata.parquet`) into a private scratch folder that mirrors
the remote tree, reads it there, and deletes the shard copy when done. Sidecars are kept for
the worker's lifetime: many parts share one metadata file. Local shards pass through.

`prefetch` copies the shard a worker will get next in a background thread while it works on
the current one, so on a GPU the copy overlaps the model instead of idling it.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, Iterator, TypeVar

from curate.io.location import Location, RemotePath, download
from curate.io.scratch import scratch_dir

Item = TypeVar("Item")  # a shard or a table file: a dataclass with a `path`


class ShardMirror:
    """A folder in this process's scratch space (`io/scratch.py`) holding remote shards' copies."""

    def __init__(self, sidecars: Callable[[Any], list[Location]] = lambda item: [],
                 in_place: Callable[[Any], bool] = lambda item: False) -> None:
        self.sidecars = sidecars  # what else an item's reader opens (`io/formats/registry.sidecars_of`)
        self.in_place = in_place  # whose reader reads a URL where it lies (`registry.streams_in_place`)
        self.root: Path | None = None
        self._lock = threading.Lock()  # the root and sidecars, shared with the prefetch thread
        self._pending: dict[Location, Future] = {}
        self._pool: ThreadPoolExecutor | None = None

    @contextmanager
    def local(self, shard: Item) -> Iterator[Item]:
        """The shard as readers can open it, for the block's duration (see `fetch`)."""
        copy = self.fetch(shard)
        try:
            yield copy
        finally:
            self.release(copy)

    def fetch(self, shard: Item) -> Item:
        """The shard itself if local or read in place; else a local copy (with its reader's sidecars)
        to `release`, taken from a finished or running `prefetch` of it when there is one."""
        if not self._copies(shard):
            return shard
        pending = self._pending.pop(shard.path, None)
        return pending.result() if pending is not None else self._copy(shard)

    def prefetch(self, shard: Item | None) -> None:
        """Start copying a remote shard in the background (one at a time); local ones need nothing."""
        if shard is None or not self._copies(shard) or shard.path in self._pending:
            return
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="curate-prefetch")
        self._pending[shard.path] = self._pool.submit(self._copy, shard)

    def release(self, copy: Item) -> None:
        """Delete a copy `fetch` made (a local shard is left alone)."""
        path = copy.path
        if self.root is None or not isinstance(path, Path) or self.root not in path.parents:
            return
        shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)

    def local_path(self, remote: RemotePath) -> Path:
        """Where `remote` is copied: the URL's path below the scratch root, so siblings stay siblings."""
        with self._lock:
            if self.root is None:
                self.root = Path(tempfile.mkdtemp(prefix="mirror-", dir=scratch_dir()))
        scheme, rest = remote.url.split("://", 1)
        return self.root / scheme / rest.lstrip("/")

    def __enter__(self) -> "ShardMirror":
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop prefetching and delete every copy (sidecars included)."""
        if self._pool is not None:
            for pending in self._pending.values():
                pending.cancel()
            self._pool.shutdown(wait=True)
            self._pool, self._pending = None, {}
        if self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = None

    def _copies(self, shard: Item) -> bool:
        return isinstance(shard.path, RemotePath) and not self.in_place(shard)

    def _copy(self, shard: Item) -> Item:
        for sidecar in self.sidecars(shard):
            self._fetch_once(sidecar)
        copy = self.local_path(shard.path)  # type: ignore[arg-type]
        download(shard.path, copy)  # type: ignore[arg-type]
        return replace(shard, path=copy)  # type: ignore[type-var]

    def _fetch_once(self, sidecar: Location) -> None:
        if not isinstance(sidecar, RemotePath):
            return
        target = self.local_path(sidecar)
        with self._lock:
            if not target.exists() and sidecar.is_file():
                download(sidecar, target)
