"""Turning the paths a user typed into shards: format detection, walking, shard ids.

Every registered reader says, by name and header alone, whether a path is one of its
shards; detection asks them in a fixed order, so the result never depends on registry
insertion order or the filesystem's listing order. Directories are walked (sorted); an
image folder is a shard and is not walked further. Inputs may be URLs (`io/remote.py`):
they are listed through fsspec, with `{00000..00099}` ranges and globs expanded.

Shard ids are the file name up to its first dot (`00000.tar` -> `00000`) wherever that is
unique among the shards of one command. Shards whose names clash (two img2dataset folders
both starting at `00000.tar`, the Hub's `default/train/0000.parquet` and
`default/test/0000.parquet`) are told apart by the folders above them, joined with `__`
(`train__0000`, `test__0000`): the fewest folders, counted from the input argument's own
name down, that make every id unique. Ids are therefore a function of the paths alone,
the same on every rerun with the same inputs.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, replace
from pathlib import PurePosixPath
from typing import Iterable, Iterator

from curate.errors import CurateError
from curate.io.formats.base import Shard, ShardReader, lookup
from curate.io.formats.registry import READERS
from curate.io.location import Location, RemotePath, expand, io_map, is_url, location
from curate.schemas.config.flow import ColumnsConfig

ID_SEPARATOR = "__"  # between the folders and the name in a shard id that needed folders to be unique


@dataclass(frozen=True)
class _Found:
    """A shard and the folder names above it, nearest last, as far up as its input argument."""

    shard: Shard
    folders: tuple[str, ...]


def find_shards(
    inputs: Iterable[Location | str], *, format: str | None = None, columns: ColumnsConfig | None = None
) -> list[Shard]:
    """The shards under `inputs` (files and folders, local or URLs), each with its detected format
    and a shard id unique among them (see the module's docstring).

    `format` forces one format: explicit files are taken as that format unchecked, and
    folders are searched for that format only. `columns` names the image, text and key
    columns (`--image-column` ...) for the formats that have columns; it travels with each
    shard to its reader. Refuses missing paths, explicit files of no known format and an
    empty result.
    """
    columns = columns or ColumnsConfig()
    readers = [lookup(READERS, format, "format")] if format else _all_readers()
    found: dict[Location, _Found] = {}
    for path in (p for raw in inputs for p in expand(location(raw))):
        if not path.exists():
            raise CurateError(f"Input path {path} does not exist.")
        for shard in _shards_at(path, readers, forced=format is not None, columns=columns):
            found.setdefault(shard.path.resolve(), _Found(shard, _folders(shard.path, path)))
    if not found:
        where = ", ".join(str(p) for p in inputs)
        raise CurateError(f"No shards found in {where} (formats: {_known()}).")
    shards = unique_ids(list(found.values()))
    _refuse_collisions(shards)
    return shards


def reader_for(shard: Shard) -> ShardReader:
    """A reader of the shard's format (refusing unknown format names)."""
    return lookup(READERS, shard.format, "format")(shard)


def detect_format(path: Location, readers: list[type[ShardReader]] | None = None) -> str | None:
    """The name of the first reader (in name order) that claims `path`, or None."""
    reader = _claimant(path, readers or _all_readers())
    return reader.format_name if reader else None


def _shards_at(
    path: Location, readers: list[type[ShardReader]], *, forced: bool, columns: ColumnsConfig
) -> Iterator[Shard]:
    """An explicit input: a file must be a shard; a folder is one, or is walked."""
    reader = _claimant(path, readers, columns)
    if reader is None and path.is_file() and forced:
        reader = readers[0]
    if reader is not None:
        yield _shard(reader, path, columns)
    elif path.is_file():
        raise CurateError(
            f"{path} is not a shard of any known format ({_known()}); pass --format to force one."
        )
    else:
        yield from _walk(path, readers, visited=set(), columns=columns)


def _walk(
    folder: Location, readers: list[type[ShardReader]], *, visited: set[Location], columns: ColumnsConfig
) -> Iterator[Shard]:
    """Shards below `folder`, depth first in sorted order; non-shards are skipped silently."""
    real = folder.resolve()
    if real in visited:  # a symlink loop
        return
    visited.add(real)
    children = [c for c in sorted(folder.iterdir(), key=lambda p: p.name) if not c.name.startswith(".")]
    claims = io_map(lambda child: _claimant(child, readers, columns), children, remote=is_url(folder))
    for child, reader in zip(children, claims):  # hidden files and writers' temporaries were left out
        if reader is not None:
            yield _shard(reader, child, columns)
        elif child.is_dir():
            yield from _walk(child, readers, visited=visited, columns=columns)


def _claimant(
    path: Location, readers: list[type[ShardReader]], columns: ColumnsConfig | None = None
) -> type[ShardReader] | None:
    for reader in readers:
        try:
            if reader.claims(path, columns or ColumnsConfig()):
                return reader
        except OSError:
            continue
    return None


def _shard(reader: type[ShardReader], path: Location, columns: ColumnsConfig) -> Shard:
    return Shard(path=path, format=reader.format_name, shard_id=reader.shard_id_for(path), columns=columns)


def _folders(shard: Location, given: Location) -> tuple[str, ...]:
    """The folder names above `shard`, up to and including the input argument `given` it was
    found under (for a shard given itself: the folders of the path as typed)."""
    if shard == given:
        return _typed_parts(given.parent)
    inside = shard.relative_to(given).parent.parts  # type: ignore[arg-type]
    name = given.name or given.resolve().name  # `.` names its folder
    return (name, *[p for p in inside if p not in ("", ".")])


def _typed_parts(path: Location) -> tuple[str, ...]:
    if isinstance(path, RemotePath):
        parts: tuple[str, ...] = PurePosixPath(path.url.split("://", 1)[-1]).parts
    else:
        parts = path.parts[1:] if path.anchor else path.parts
    return tuple(p for p in parts if p not in ("", ".", ".."))


def unique_ids(found: list[_Found]) -> list[Shard]:
    """Each shard with an id unique among `found`: its own id where nothing else has it, else
    the fewest folders above it that tell the clashing shards apart, then (for shards of one
    folder that differ only in their extensions) the whole file name."""
    depth = [0] * len(found)
    while True:
        ids = [_id_at(item, level) for item, level in zip(found, depth)]
        counts = Counter(ids)
        clashing = [i for i, shard_id in enumerate(ids) if counts[shard_id] > 1 and depth[i] <= len(found[i].folders)]
        if not clashing:
            return [replace(item.shard, shard_id=shard_id) for item, shard_id in zip(found, ids)]
        for i in clashing:
            depth[i] += 1


def _id_at(item: _Found, level: int) -> str:
    """Level 0: the reader's id; 1..n: that many folders above it too; n+1: all of them and the
    whole file name (dots as `_`)."""
    folders = item.folders
    if level <= len(folders):
        return ID_SEPARATOR.join([*folders[len(folders) - level:], item.shard.shard_id])
    return ID_SEPARATOR.join([*folders, item.shard.path.name.replace(".", "_")])


def _refuse_collisions(shards: list[Shard]) -> None:
    """Two shards with one id would overwrite each other's outputs: refuse, naming both (ids are
    made unique above; what is left are names no folder or extension tells apart)."""
    by_id: dict[str, list[Shard]] = {}
    for shard in shards:
        by_id.setdefault(shard.shard_id, []).append(shard)
    clashes = [group for group in by_id.values() if len(group) > 1]
    if clashes:
        described = "; ".join(
            f"'{group[0].shard_id}' from " + " and ".join(str(s.path) for s in group)
            for group in clashes
        )
        raise CurateError(f"Shard ids collide, rename or split the inputs: {described}.")


def _all_readers() -> list[type[ShardReader]]:
    return [READERS[name] for name in sorted(READERS)]


def _known() -> str:
    return ", ".join(sorted(READERS))
