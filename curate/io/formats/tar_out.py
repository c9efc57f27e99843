"""A tar written member by member with the bytes `tarfile.open(path, "w")` writes, faster.

`tarfile` builds each header through its PAX machinery (tens of microseconds of Python per
member; a WebDataset tar has three members per sample). Every member a subset writes has a
plain name and one modification time, so `TarOut` fills a ustar header template made by
`tarfile` once and only sets the name, size and checksum. The first header it fills is compared
with the one `tarfile` makes for the same member; on any difference (another Python's
`tarfile`), and for a name a ustar header cannot hold (long or not ASCII: PAX), `tarfile`'s own
header is written. The end blocks and the record padding are `TarFile.close`'s.
"""

from __future__ import annotations

import tarfile
from typing import BinaryIO

BLOCK = tarfile.BLOCKSIZE
_SIZE = slice(124, 136)
_CHECKSUM = slice(148, 156)
_MAX_SIZE = 8**11 - 1  # what 11 octal digits hold


class TarOut:
    """Regular members appended to an open binary file, then the end of the archive."""

    def __init__(self, handle: BinaryIO, *, mtime: int, mode: int) -> None:
        self.handle = handle
        self.mtime, self.mode = mtime, mode
        self.offset = 0
        self._template = self._tarfile_header("a", 0)
        self._checked = False  # the template is trusted once one header matched tarfile's

    def add(self, name: str, data: bytes) -> None:
        header = self._header(name, len(data))
        self.handle.write(header)
        self.handle.write(data)
        padding = -len(data) % BLOCK
        self.handle.write(bytes(padding))
        self.offset += len(header) + len(data) + padding

    def close(self) -> None:
        """Two zero blocks, then zeros up to a whole record (as `TarFile.close`)."""
        self.handle.write(bytes(2 * BLOCK))
        self.offset += 2 * BLOCK
        self.handle.write(bytes(-self.offset % tarfile.RECORDSIZE))

    def _header(self, name: str, size: int) -> bytes:
        if not (name.isascii() and len(name) <= 100 and size <= _MAX_SIZE and self._template is not None):
            return self._tarfile_header(name, size)
        filled = self._filled(name.encode("ascii"), size)
        if not self._checked:
            if filled != self._tarfile_header(name, size):
                self._template = None  # this tarfile writes otherwise: let it write every header
                return self._tarfile_header(name, size)
            self._checked = True
        return filled

    def _filled(self, name: bytes, size: int) -> bytes:
        header = bytearray(self._template)  # type: ignore[arg-type]
        header[0:100] = name.ljust(100, b"\0")
        header[_SIZE] = b"%011o\0" % size
        header[_CHECKSUM] = b" " * 8
        header[148:155] = b"%06o\0" % sum(header)
        return bytes(header)

    def _tarfile_header(self, name: str, size: int) -> bytes:
        info = tarfile.TarInfo(name)
        info.size, info.mtime, info.mode = size, self.mtime, self.mode
        return info.tobuf(tarfile.PAX_FORMAT, tarfile.ENCODING, "surrogateescape")
