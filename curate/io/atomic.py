"""Atomic file output: write under a temporary name in the same folder, rename when complete.

A reader of the output folder (or a resumed run) therefore sees either nothing or a whole
file, never a half-written one, whatever moment the process was killed at.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from curate.io.location import TMP_SUFFIX, Location, RemotePath, tmp_name, upload
from curate.io.process import this_writer_tag, writer_of
from curate.io.scratch import scratch_dir


def staging_path(final: Location) -> Path:
    """Where `final` is written before it is published: a hidden sibling, or this process's
    scratch folder (`io/scratch.py`) when `final` is at a URL."""
    if isinstance(final, RemotePath):
        handle, name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=TMP_SUFFIX, dir=scratch_dir())
        os.close(handle)
        return Path(name)
    final.parent.mkdir(parents=True, exist_ok=True)
    return tmp_name(final)


def publish(tmp: Path, final: Location) -> None:
    """Move a complete temporary file onto `final`: a rename here, a whole upload to a URL."""
    if isinstance(final, RemotePath):
        upload(tmp, final)
        tmp.unlink()
    else:
        os.replace(tmp, final)


class PublishOnSuccess:
    """A `with` block publishes the output (`close`) if it succeeds and drops it (`abort`) if not."""

    def close(self) -> None:
        raise NotImplementedError

    def abort(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Any:
        return self

    def __exit__(self, exc_type: Any, *_: Any) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


@contextmanager
def atomic_path(final: Location) -> Iterator[Path]:
    """Yield a temporary path to write; publish it onto `final` only if the block succeeds."""
    final = final if isinstance(final, RemotePath) else Path(final)
    tmp = staging_path(final)
    try:
        yield tmp
        publish(tmp, final)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_json_atomic(final: Path, payload: Any) -> None:
    """Write a JSON document atomically (cards, manifests, stats markers)."""
    with atomic_path(final) as tmp:
        tmp.write_text(json.dumps(payload, indent=2, sort_keys=True, default=str) + "\n")


def remove_stale_tmp(folder: Location, *, settled_before: float | None = None) -> int:
    """Delete temporary files whose writers are gone (killed runs); returns how many were removed.

    A file of a process still running is never touched: another command writing the same
    folder, or a worker of this run, keeps its half-written output. A writer on this host is
    gone when its pid no longer runs. Another host's process cannot be asked: its files go
    only if last modified before `settled_before`, a moment the caller knows none of its own
    writers ran (when it took the folder's lock, or after its workers all finished).
    """
    if not folder.is_dir():
        return 0
    stale = [p for p in folder.iterdir() if is_stale_tmp(p, settled_before=settled_before)]
    for p in stale:
        if isinstance(p, Path) and p.is_dir() and not p.is_symlink():  # an image-folder shard being written
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)
    return len(stale)


def is_stale_tmp(path: Location, *, settled_before: float | None = None) -> bool:
    """Whether `path` is a temporary file (`.<name>.<pid>@<host>.tmp`) whose writer is gone."""
    if not (path.name.startswith(".") and path.name.endswith(TMP_SUFFIX)):
        return False
    writer = writer_of(path.name)
    if writer is None:  # no writer recorded: a file of an older version, left by a killed run
        return True
    if writer.here:
        return not writer.running()
    if settled_before is None or not isinstance(path, Path):
        return False
    try:
        return path.lstat().st_mtime < settled_before
    except FileNotFoundError:
        return False


@contextmanager
def atomic_dir(final: Path) -> Iterator[Path]:
    """Yield a temporary folder to fill; it replaces `final` (and any old one) only if the block succeeds.

    For outputs made of several files that are only meaningful together (an index, its id
    map and its card): readers see the old folder or the new one (or, for the instant of the
    swap, none), never a mixture of the two.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = tmp_name(final)
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        yield tmp
        old = final.with_name(f".{final.name}.old.{this_writer_tag()}{TMP_SUFFIX}")
        if final.exists():
            os.replace(final, old)
        os.replace(tmp, final)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def remove_stale_dirs(final: Path) -> int:
    """Delete temporary siblings of `final` that a killed `atomic_dir` left behind (never those of
    a process still running)."""
    final = Path(final)
    if not final.parent.is_dir():
        return 0
    stale = [p for p in final.parent.iterdir()
             if p.name.startswith(f".{final.name}.") and p.is_dir() and is_stale_tmp(p)]
    for p in stale:
        shutil.rmtree(p, ignore_errors=True)
    return len(stale)
