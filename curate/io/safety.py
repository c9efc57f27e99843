"""Shared defences every reader applies, so hostile or broken input is handled one way.

Member names come from files we do not control (tar and zip entries, CSV cells, key
columns). They are only ever used as labels in a sample key, and before any of them is
joined onto the filesystem it must pass `unsafe_reason` and resolve inside its folder.
A problem with one member becomes that member's `SampleError`; a problem with the shard
itself ends its stream with one error keyed by the shard id: readers never raise on data.
"""

from __future__ import annotations

import csv
import re
import tarfile
import zipfile
import zlib
from pathlib import Path, PurePosixPath
from typing import Any, Callable, Iterable, Iterator

import numpy as np
import pyarrow as pa

from curate.schemas.sample import ErrorKind, Record, Sample, SampleError, Stage

# Far above any real training image; a member declaring more is a bomb or garbage.
MAX_MEMBER_BYTES = 256 * 1024 * 1024

# What a broken file can throw while being read: anything else is a bug and keeps its traceback.
SHARD_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    EOFError,
    ValueError,  # includes UnicodeDecodeError, json.JSONDecodeError, pyarrow.ArrowInvalid
    RuntimeError,  # zipfile: encrypted members
    NotImplementedError,  # zipfile: unsupported compression
    tarfile.TarError,
    zipfile.BadZipFile,
    zlib.error,
    csv.Error,
    pa.ArrowException,
)

_DRIVE = re.compile(r"^[A-Za-z]:")
# A superset of the names `unsafe_reason` refuses, in RE2's syntax (what Arrow matches with).
_MAYBE_UNSAFE = r"^$|^[/\\]|^[A-Za-z]:|(^|[/\\])\.\.([/\\]|$)|\x00"


class MemberProblem(ValueError):
    """Raised while building one member's sample; becomes that member's `SampleError`.

    A ValueError, so one raised outside a member (say, an oversize JSON index) still ends
    the shard as `UNREADABLE_SHARD` instead of crashing the run.
    """

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


def unsafe_reason(name: str) -> str | None:
    """Why `name` must not be used as a member name (None when it is safe).

    Refuses absolute paths (POSIX, Windows drive or UNC), `..` components in either slash
    style, NUL bytes, and names that are not valid UTF-8 (surrogate-escaped bytes).
    """
    if not name:
        return "empty member name"
    if "\x00" in name:
        return f"member name {name!r} contains a NUL byte"
    if not _is_utf8(name):
        return f"member name {name!r} is not valid UTF-8"
    if name.startswith(("/", "\\")) or _DRIVE.match(name):
        return f"member name {name!r} is an absolute path"
    if ".." in re.split(r"[\\/]", name):
        return f"member name {name!r} climbs out of its folder with '..'"
    return None


def unsafe_names(names: pa.Array) -> np.ndarray:
    """`unsafe_reason(name) is not None` for each name of a string array (Arrow strings are
    valid UTF-8): one pattern finds the suspects, and only they get the exact check."""
    import pyarrow.compute as pc

    suspect = np.array(pc.match_substring_regex(names, _MAYBE_UNSAFE).to_numpy(zero_copy_only=False), dtype=bool)
    for i in np.flatnonzero(suspect):
        suspect[i] = unsafe_reason(names[int(i)].as_py()) is not None
    return suspect


def check_member_name(name: str) -> str:
    """Return `name` if it is safe, else raise `MemberProblem(UNSAFE_MEMBER_NAME)`."""
    reason = unsafe_reason(name)
    if reason:
        raise MemberProblem(ErrorKind.UNSAFE_MEMBER_NAME, reason)
    return name


def check_size(size: int, name: str) -> None:
    """Refuse a member whose declared size would exhaust memory when read."""
    if size > MAX_MEMBER_BYTES:
        raise MemberProblem(
            ErrorKind.DECOMPRESSION_BOMB,
            f"member {name!r} declares {size} bytes, over the {MAX_MEMBER_BYTES}-byte limit",
        )


def check_archive_member(name: str, size: int, *, regular: bool = True) -> None:
    """The checks a tar or zip member passes before its bytes are read."""
    check_member_name(name)
    if not regular:
        raise MemberProblem(
            ErrorKind.UNSAFE_MEMBER_NAME, f"member {name!r} is a link or device, not a file"
        )
    check_size(size, name)


def resolve_inside(folder: Path, name: str) -> Path:
    """`folder / name`, refused unless it stays inside `folder` (after following symlinks)."""
    check_member_name(name)
    root = folder.resolve()
    target = (root / name).resolve()
    if not target.is_relative_to(root):
        raise MemberProblem(
            ErrorKind.UNSAFE_MEMBER_NAME, f"member name {name!r} resolves outside {folder}"
        )
    return target


def referenced_file(folder: Path, name: str) -> Path:
    """The file a row names by path (a `datasets` image stored as `{bytes: null, path}`).

    A relative name must resolve inside `folder`, the shard's own folder (as an archive
    member must stay inside its archive); an absolute one is taken as it is. Either way the
    name passes the member-name checks (no NUL, valid UTF-8, no `..`) and must be a regular
    file: not a device, a FIFO or a folder.
    """
    absolute = name.startswith("/") and not name.startswith("//")
    check_member_name(name.lstrip("/") if absolute else name)
    path = Path(name).resolve() if absolute else resolve_inside(folder, name)
    if not path.is_file():
        where = "" if absolute else f" in {folder}"
        raise MemberProblem(ErrorKind.MISSING_IMAGE, f"no image file {name!r}{where}")
    return path


def decode_text(raw: bytes | None) -> str | None:
    """Caption bytes as text; None stays None (the pipeline reports missing captions)."""
    if raw is None:
        return None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MemberProblem(ErrorKind.NON_UTF8_TEXT, f"caption is not valid UTF-8: {exc}") from None


def check_text(text: str | None) -> str | None:
    """Refuse text that was read with surrogateescape and so holds non-UTF-8 bytes."""
    if text is not None and not _is_utf8(text):
        raise MemberProblem(ErrorKind.NON_UTF8_TEXT, "caption is not valid UTF-8")
    return text


def record_or_error(key: str, build: Callable[..., Sample], *args: Any) -> Record:
    """Run `build(*args)`; a `MemberProblem` it raises becomes the member's `SampleError`."""
    try:
        return build(*args)
    except MemberProblem as problem:
        return SampleError(key=key, stage=Stage.READ, error=problem.kind, message=problem.message)


def member_error(key: str, kind: str, message: str) -> SampleError:
    """A read-stage error for one member."""
    return SampleError(key=key, stage=Stage.READ, error=kind, message=message)


def shard_failure(shard_id: str, exc: BaseException) -> SampleError:
    """The one error that ends a shard which could not be opened or broke mid-way."""
    message = str(exc) or type(exc).__name__
    return SampleError(
        key=shard_id, stage=Stage.READ, error=ErrorKind.UNREADABLE_SHARD, message=message
    )


def guard_records(shard_id: str, records: Iterable[Record]) -> Iterator[Record]:
    """Wrap a reader's raw stream with the checks every format shares.

    A sample whose member part is unsafe, or whose key was already seen in this shard,
    becomes an error; a read failure ends the stream with one `UNREADABLE_SHARD` error
    after what was read so far, instead of raising and losing the count.
    """
    seen: set[str] = set()
    try:
        for record in records:
            yield _vetted(record, shard_id, seen)
    except SHARD_ERRORS as exc:
        yield shard_failure(shard_id, exc)


def vet_first(record: Record, shard_id: str) -> Record:
    """`guard_records`' check of a record whose key the shard has not given before (a reader
    that skips records keeps track of the keys itself)."""
    return _vetted(record, shard_id, set())


def _vetted(record: Record, shard_id: str, seen: set[str]) -> Record:
    """Turn a repeated or unsafely named sample into its error; errors pass through."""
    key = record.key
    first_time = key not in seen
    seen.add(key)
    if isinstance(record, SampleError):
        return record
    if not first_time:
        return member_error(key, ErrorKind.DUPLICATE_KEY, f"key {key!r} appears again in the shard")
    reason = unsafe_reason(key[len(shard_id) + 1 :])
    if reason:
        return member_error(key, ErrorKind.UNSAFE_MEMBER_NAME, reason)
    return record


def _is_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def split_member(name: str) -> tuple[str, str]:
    """WebDataset grouping: (`dir/stem`, `ext`) where stem ends at the first dot of the file name.

    `a/b/000001.jpg` -> (`a/b/000001`, `jpg`); `x.seg.png` -> (`x`, `seg.png`).
    """
    if "/" not in name and name not in ("", "."):  # the usual flat name: what PurePosixPath gives
        stem, _, ext = name.partition(".")
        return stem, ext.lower()
    path = PurePosixPath(name)
    stem, _, ext = path.name.partition(".")
    parent = str(path.parent)
    return (stem if parent == "." else f"{parent}/{stem}"), ext.lower()
