"""The headers of a plain tar, parsed here: where each member's bytes lie, without reading them.

`tarfile` spends tens of microseconds of Python per header; a WebDataset tar has three
members per sample, so listing a tar costs more than reading its bytes. `tar_index` parses
the 512-byte ustar headers itself (a few microseconds each) and returns, for every member
in order, its name, type and where its data lies, so a reader can seek to the members it
wants and skip the rest. It gives exactly what `tarfile` would list, or None whenever a
header needs `tarfile`'s own handling (pax and GNU extension headers, base-256 or unusual
number fields, a bad checksum, a tar cut short or without its end-of-archive block, a
compressed tar); the caller then reads the tar with `tarfile` as before.
"""

from __future__ import annotations

import re
import tarfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import BinaryIO

BLOCK = 512
_ZERO_BLOCK = bytes(BLOCK)
_NUMBER_FIELDS = ((100, 108), (108, 116), (116, 124), (124, 136), (136, 148), (329, 337), (337, 345))
_PLAIN_NUMBER = re.compile(rb"[0-7]*[ \0]*")  # what `tarfile.nti` reads as octal digits, and nothing else
# How tar writers fill mode, uid, gid, size and mtime, and the device numbers: checked at once.
_USUAL_NUMBERS = re.compile(rb"(?:[0-7]{7}[ \0]){3}(?:[0-7]{11}[ \0]){2}")
_USUAL_DEVICES = re.compile(rb"(?:[0-7]{7}[ \0]|\0{8}){2}")
_REGULAR = (tarfile.REGTYPE, tarfile.AREGTYPE, tarfile.CONTTYPE)
_OTHER_BUILTIN = (tarfile.LNKTYPE, tarfile.SYMTYPE, tarfile.CHRTYPE, tarfile.BLKTYPE, tarfile.DIRTYPE,
                  tarfile.FIFOTYPE)
_NEEDS_TARFILE = (tarfile.XHDTYPE, tarfile.XGLTYPE, tarfile.SOLARIS_XHDTYPE, *tarfile.GNU_TYPES)


@dataclass(frozen=True, slots=True)
class TarMember:
    """One header as `tarfile` reads it: the name, whether it is a regular file or a folder,
    its declared size and where its data starts."""

    name: str
    regular: bool
    folder: bool
    size: int
    offset: int


def tar_index(path: Path) -> tuple[TarMember, ...] | None:
    """Every member of the uncompressed tar at `path`, in order; None when `tarfile` is needed.

    Counting, typing the meta and copying all list the same tar: the listing is kept for as
    long as the file's size and modification time stay what they were."""
    stat = path.stat()
    return _cached_index(path.resolve(), stat.st_size, stat.st_mtime_ns)


@lru_cache(maxsize=16)
def _cached_index(path: Path, size: int, mtime_ns: int) -> tuple[TarMember, ...] | None:
    with path.open("rb") as handle:
        end = handle.seek(0, 2)
        handle.seek(0)
        members = _members(handle, end)
    return None if members is None else tuple(members)


def _members(handle: BinaryIO, end: int) -> list[TarMember] | None:
    members: list[TarMember] = []
    offset = 0
    while True:
        header = handle.read(BLOCK)
        if len(header) < BLOCK:
            return None  # no end-of-archive block: `tarfile` reports the damage
        if header == _ZERO_BLOCK:
            return members
        member = _parse(header, offset + BLOCK)
        if member is None:
            return None
        skip = -(-member.size // BLOCK) * BLOCK  # builtin non-regular members here have no data
        if member.offset + skip > end:
            return None  # the data is cut short
        members.append(member)
        offset = member.offset + skip
        handle.seek(offset)


def _parse(header: bytes, data_offset: int) -> TarMember | None:
    """One header, as `tarfile.TarInfo.frombuf` and `_proc_builtin` read it; None when unusual."""
    kind = header[156:157]
    if kind in _NEEDS_TARFILE or header[124] & 0x80 or not _plain_numbers(header) or not _checksum_ok(header):
        return None
    size = int(header[124:136].split(b"\0", 1)[0].strip() or b"0", 8)
    name = _text(header[0:100])
    prefix = _text(header[345:500])
    if kind == tarfile.AREGTYPE and name.endswith("/"):
        kind = tarfile.DIRTYPE
    folder = kind == tarfile.DIRTYPE
    if folder:
        name = name.rstrip("/")
    if prefix:
        name = f"{prefix}/{name}"
    regular = kind in _REGULAR
    if not regular and kind in _OTHER_BUILTIN and size:
        return None  # `tarfile` would not skip its data: leave such a tar to it
    return TarMember(name=name, regular=regular, folder=folder, size=size, offset=data_offset)


def _plain_numbers(header: bytes) -> bool:
    if _USUAL_NUMBERS.fullmatch(header, 100, 148) and _USUAL_DEVICES.fullmatch(header, 329, 345):
        return True
    return all(_PLAIN_NUMBER.fullmatch(header, start, stop) for start, stop in _NUMBER_FIELDS)


def _checksum_ok(header: bytes) -> bool:
    """The stored checksum against the header's sum with the checksum field as spaces."""
    field = header[148:156]
    if not _PLAIN_NUMBER.fullmatch(field):
        return False
    stored = int(field.split(b"\0", 1)[0].strip() or b"0", 8)
    return stored in tarfile.calc_chksums(header) if stored != sum(header) - sum(field) + 256 else True


def _text(field: bytes) -> str:
    """`tarfile.nts` with the encoding `tarfile` reads names with."""
    return field.split(b"\0", 1)[0].decode(tarfile.ENCODING, "surrogateescape")
