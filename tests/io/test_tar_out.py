"""`TarOut` writes the bytes `tarfile.open(path, "w")` writes for the same members."""

from __future__ import annotations

import io
import tarfile

import pytest

from curate.io.formats.tar_out import TarOut

MTIME = 1_700_000_000
MEMBERS = [("000001.jpg", b"\xff" * 700), ("000001.txt", "a caption".encode()), ("000001.json", b"{}"),
           ("n" * 100, b""), ("caf\u00e9.txt", b"not ascii: a PAX header"), ("x" * 130 + ".json", b"{}"),
           ("sub/000002.png", b"p" * 512), ("000003.txt", b"z" * 10_000)]


def tarfile_bytes(members: list[tuple[str, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), MTIME, 0o644
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def tar_out_bytes(members: list[tuple[str, bytes]]) -> tuple[bytes, TarOut]:
    buffer = io.BytesIO()
    out = TarOut(buffer, mtime=MTIME, mode=0o644)
    for name, data in members:
        out.add(name, data)
    out.close()
    return buffer.getvalue(), out


@pytest.mark.parametrize("count", [0, 1, 3, len(MEMBERS)])
def test_the_same_bytes_as_tarfile(count):
    written, out = tar_out_bytes(MEMBERS[:count])
    assert written == tarfile_bytes(MEMBERS[:count])
    assert out._checked == (count > 0)  # the template was used, not tarfile for every header
    with tarfile.open(fileobj=io.BytesIO(written)) as tar:
        assert [(m.name, tar.extractfile(m).read()) for m in tar] == MEMBERS[:count]


def test_a_template_tarfile_disagrees_with_is_dropped(monkeypatch):
    """Another `tarfile` writing other headers: every header is then tarfile's own."""
    buffer = io.BytesIO()
    out = TarOut(buffer, mtime=MTIME, mode=0o644)
    out._template = out._template[:257] + b"other" + out._template[262:]  # a magic this tarfile never writes
    for name, data in MEMBERS:
        out.add(name, data)
    out.close()
    assert out._template is None and buffer.getvalue() == tarfile_bytes(MEMBERS)
