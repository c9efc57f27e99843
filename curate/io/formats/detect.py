"""Turning the paths a user typed into shards: format detection, walking, refusals.

Every registered reader says, by name and header alone, whether a path is one of its
shards; detection asks them in a fixed order, so the result never depends on registry
insertion order or the filesystem's listing order. Directories are walked (sorted); an
image folder is a shard and is not walked further. Inputs may be URLs (`io/remote.py`):
they are listed through fsspec, with `{00000..00099}` ranges and globs expanded.
"""

from __future__ import annotations

from typing import Iterable, Iterator

from curate.errors import CurateError
from curate.io.formats.base import Shard, ShardReader, lookup
from curate.io.formats.registry import READERS
from curate.io.location import Location, expand, io_map, is_url, location


def find_shards(inputs: Iterable[Location | str], *, format: str | None = None) -> list[Shard]:
    """The shards under `inputs` (files and folders, local or URLs), each with its detected format.

    `format` forces one format: explicit files are taken as that format unchecked, and
    folders are searched for that format only. Refuses missing paths, explicit files of no
    known format, an empty result, and two shards sharing a shard id.
    """
    readers = [lookup(READERS, format, "format")] if format else _all_readers()
    found: dict[Location, Shard] = {}
    for path in (p for raw in inputs for p in expand(location(raw))):
        if not path.exists():
            raise CurateError(f"Input path {path} does not exist.")
        for shard in _shards_at(path, readers, forced=format is not None):
            found.setdefault(shard.path.resolve(), shard)
    if not found:
        where = ", ".join(str(p) for p in inputs)
        raise CurateError(f"No shards found in {where} (formats: {_known()}).")
    shards = list(found.values())
    _refuse_collisions(shards)
    return shards


def reader_for(shard: Shard) -> ShardReader:
    """A reader of the shard's format (refusing unknown format names)."""
    return lookup(READERS, shard.format, "format")(shard)


def detect_format(path: Location, readers: list[type[ShardReader]] | None = None) -> str | None:
    """The name of the first reader (in name order) that claims `path`, or None."""
    reader = _claimant(path, readers or _all_readers())
    return reader.format_name if reader else None


def _shards_at(path: Location, readers: list[type[ShardReader]], *, forced: bool) -> Iterator[Shard]:
    """An explicit input: a file must be a shard; a folder is one, or is walked."""
    reader = _claimant(path, readers)
    if reader is None and path.is_file() and forced:
        reader = readers[0]
    if reader is not None:
        yield _shard(reader, path)
    elif path.is_file():
        raise CurateError(
            f"{path} is not a shard of any known format ({_known()}); pass --format to force one."
        )
    else:
        yield from _walk(path, readers, visited=set())


def _walk(folder: Location, readers: list[type[ShardReader]], *, visited: set[Location]) -> Iterator[Shard]:
    """Shards below `folder`, depth first in sorted order; non-shards are skipped silently."""
    real = folder.resolve()
    if real in visited:  # a symlink loop
        return
    visited.add(real)
    children = [c for c in sorted(folder.iterdir(), key=lambda p: p.name) if not c.name.startswith(".")]
    claims = io_map(lambda child: _claimant(child, readers), children, remote=is_url(folder))  # footers, on a bucket
    for child, reader in zip(children, claims):  # hidden files and writers' temporaries were left out
        if reader is not None:
            yield _shard(reader, child)
        elif child.is_dir():
            yield from _walk(child, readers, visited=visited)


def _claimant(path: Location, readers: list[type[ShardReader]]) -> type[ShardReader] | None:
    for reader in readers:
        try:
            if reader.matches(path):
                return reader
        except OSError:
            continue
    return None


def _shard(reader: type[ShardReader], path: Location) -> Shard:
    return Shard(path=path, format=reader.format_name, shard_id=reader.shard_id_for(path))


def _refuse_collisions(shards: list[Shard]) -> None:
    """Two shards with one id would overwrite each other's outputs: refuse, naming both."""
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
