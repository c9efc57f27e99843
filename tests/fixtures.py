"""Builders for hand-made (often broken) shards that the writers would never produce."""

from __future__ import annotations

import io
import json
import tarfile
import zipfile
from pathlib import Path
from typing import Iterable

from curate.io.formats.base import Shard
from curate.io.formats.detect import reader_for
from curate.schemas.sample import Record, Sample, SampleError
from curate.synthetic.scenes import render_scene


def image_bytes(index: int = 0, *, image_format: str = "PNG") -> bytes:
    """A small real encoded image (rendered scene)."""
    return render_scene(index, size=32, image_format=image_format).image


def write_tar(path: Path, members: Iterable[tuple[str, bytes]]) -> Path:
    """A tar with exactly these (name, bytes) members, in this order."""
    with tarfile.open(path, "w") as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def add_tar_link(path: Path, name: str, target: str) -> Path:
    """Append a symlink member to an existing uncompressed tar."""
    with tarfile.open(path, "a") as tar:
        info = tarfile.TarInfo(name)
        info.type = tarfile.SYMTYPE
        info.linkname = target
        tar.addfile(info)
    return path


def wds_members(index: int, *, key: str | None = None, caption: bytes | None = None,
                meta: dict | None = None) -> list[tuple[str, bytes]]:
    """The jpg/txt/json members of one img2dataset sample."""
    key = key or f"{index:09d}"
    text = caption if caption is not None else f"caption {index}".encode()
    members = [(f"{key}.png", image_bytes(index)), (f"{key}.txt", text)]
    if meta is not None:
        members.append((f"{key}.json", json.dumps(meta).encode()))
    return members


def write_zip(path: Path, members: Iterable[tuple[str, bytes]]) -> Path:
    """A zip with exactly these (name, bytes) members."""
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members:
            zf.writestr(zipfile.ZipInfo(name), data)
    return path


def truncate(path: Path, keep: int) -> Path:
    """Cut a file to its first `keep` bytes, as an interrupted download would."""
    data = path.read_bytes()
    path.write_bytes(data[:keep])
    return path


def read_all(path: Path, fmt: str, shard_id: str | None = None) -> list[Record]:
    """Every record a reader yields for `path` read as `fmt`."""
    from curate.io.formats.registry import READERS

    shard_id = shard_id or READERS[fmt].shard_id_for(path)
    return list(reader_for(Shard(path=path, format=fmt, shard_id=shard_id)))


def samples(records: list[Record]) -> list[Sample]:
    return [r for r in records if isinstance(r, Sample)]


def errors(records: list[Record]) -> list[SampleError]:
    return [r for r in records if isinstance(r, SampleError)]


def error_kinds(records: list[Record]) -> dict[str, str]:
    """key -> error kind of every error record."""
    return {e.key: e.error for e in errors(records)}
