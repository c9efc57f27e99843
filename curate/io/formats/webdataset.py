"""WebDataset tars in img2dataset's layout: `{key}.jpg|png|webp`, `{key}.txt`, `{key}.json`.

The tar is streamed (`r|*`, so gzip/bz2/xz tars work and nothing is seeked; a URL is read
where it lies, `location.open_in_place`), members are
grouped by key (the path up to the first dot of the file name), and each group becomes one
sample. Members of one sample are adjacent in a WebDataset tar; a key that comes back later
is a duplicate.

Every field of the JSON is kept as meta (nested values as JSON text), except `key` and
`caption`, which repeat the member name and the `.txt`. The fields and their types are
known before iterating: from img2dataset's status file beside the tar (`io/formats/img2dataset.py`)
when there is one, else from a pass over the tar's JSON members (for a tar at a URL, from
the members of its first ranged request, read by the stream the samples then come from); img2dataset's six fixed fields are always there. The status file's failed downloads follow the tar's samples as
`download_failed` errors.
"""

from __future__ import annotations

import itertools
import json
import logging
import tarfile
import time
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any, BinaryIO, Callable, Container, Iterable, Iterator, Sequence

import pyarrow as pa

from curate.io import location
from curate.io.formats import img2dataset
from curate.io.formats.base import ShardReader, register_reader, register_writer
from curate.io.formats.meta import (
    FieldTypes,
    is_scalar,
    json_text,
    renamed_columns,
    renamed_schema,
    typed_meta,
)
from curate.io.formats.naming import (
    IMAGE_EXTENSIONS,
    image_extension,
    strip_image_extension,
    writable_member,
)
from curate.io.formats.tar_index import TarMember, tar_index
from curate.io.formats.tar_out import TarOut
from curate.io.formats.writing import AtomicShardWriter
from curate.io.location import Location, open_in_place
from curate.io.safety import (
    SHARD_ERRORS,
    MemberProblem,
    check_archive_member,
    check_size,
    decode_text,
    guard_records,
    record_or_error,
    shard_failure,
    split_member,
    vet_first,
)
from curate.schemas.sample import Record, Sample, SampleError
from curate.schemas.tables import RESERVED_COLUMNS

log = logging.getLogger(__name__)

TAR_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz")

META_SCHEMA = pa.schema(
    [
        ("url", pa.string()),
        ("width", pa.int64()),
        ("height", pa.int64()),
        ("original_width", pa.int64()),
        ("original_height", pa.int64()),
        ("sha256", pa.string()),
    ]
)


@dataclass
class _Group:
    """The members read so far for one key: extension -> bytes (first one of each wins).

    A member refused before reading (unsafe name, link, oversize) marks the whole group, so
    one logical sample gives exactly one record.
    """

    key: str
    parts: dict[str, bytes] = field(default_factory=dict)
    problem: MemberProblem | None = None

    def add(self, ext: str, data: bytes | MemberProblem) -> None:
        if isinstance(data, MemberProblem):
            self.problem = self.problem or data
        else:
            self.parts.setdefault(ext, data)


@register_reader
class WebDatasetReader(ShardReader):
    """Streams a tar once, front to back, yielding one record per key."""

    format_name = "webdataset"
    streams = True
    _typed_from_head = False  # the meta was typed from a URL tar's first members (`_read_head`)
    _unknown_noted = False
    _started: Iterator[Any] | None = None  # a URL tar's stream, begun by `_read_head`

    @cached_property
    def _status(self) -> pa.Schema | None:
        """img2dataset's status file's schema, None without one; read once (at a URL, a request)."""
        return img2dataset.status_schema(self.shard.path)

    @classmethod
    def matches(cls, path: Location) -> bool:
        return path.is_file() and path.name.lower().endswith(TAR_SUFFIXES)

    @classmethod
    def sidecars(cls, path: Location) -> list[Location]:
        """img2dataset's status file, which lists the failed downloads and the meta's types."""
        return [img2dataset.status_file(path)]

    def meta_schema(self) -> pa.Schema:
        return self._meta_layout[0]

    @cached_property
    def _meta_layout(self) -> tuple[pa.Schema, dict[str, str]]:
        """The meta schema and JSON field -> meta column (reserved names suffixed `_from_source`)."""
        status = self._status
        if status is not None:
            fields = [f for f in status if f.name not in img2dataset.REPEATED_FIELDS and is_scalar(f.type)]
            schema = pa.schema(fields)
        else:
            schema = self._json_fields().schema(known=META_SCHEMA)
        names = renamed_columns(schema.names, RESERVED_COLUMNS)
        return renamed_schema(schema, RESERVED_COLUMNS), names

    def _json_fields(self) -> FieldTypes:
        """The JSON members' fields and types: of a local tar, from a pass that reads only the
        JSON members; of a tar at a URL, from its first members (see `_read_head`). An
        unreadable tar gives what was read before the damage (iterating reports it)."""
        path = self.shard.path
        if isinstance(path, Path):
            try:
                stat = path.stat()
            except OSError:
                return FieldTypes()
            return _local_json_fields(path.resolve(), stat.st_size, stat.st_mtime_ns)
        return _field_types(self._read_head)

    def _read_head(self) -> list[dict[str, Any]]:
        """The JSON objects among the members of the first `STREAM_BLOCK` bytes (at least one)
        of a tar at a URL, read from the stream iterating then goes on with: the tar is
        fetched once, and the first sample is not held back until all of it has arrived. A
        field first met later is not kept, which the log says."""
        stream = self._members()
        head: list[Any] = []
        objects: list[dict[str, Any]] = []
        size = 0
        for item in stream:
            head.append(item)
            if isinstance(item, SampleError):
                break
            name, data = item
            if isinstance(data, bytes):
                size += len(data)
                if name.lower().endswith(".json"):
                    objects.append(_json_dict(data))
            if objects and size >= location.STREAM_BLOCK:
                break
        self._started = itertools.chain(head, stream)
        self._typed_from_head = True
        return objects

    def estimate_count(self) -> int | None:
        """Distinct image keys from a header-only scan (plus the failed downloads when img2dataset's
        status file says how many URLs there were); None for compressed tars."""
        if self._status is not None:
            return img2dataset.status_rows(self.shard.path)
        if not self.shard.path.name.lower().endswith(".tar"):
            return None
        try:
            names = _regular_names(self.shard.path)
        except SHARD_ERRORS:
            return None
        return len({stem for stem, ext in map(split_member, names) if ext in IMAGE_EXTENSIONS})

    def select(self, wanted: Container[str]) -> Iterator[Record] | None:
        """The records of the `wanted` keys alone, in tar order, as iterating gives them (a key's
        first group; later ones are its duplicates), reading no other member's bytes; None when
        the tar needs `tarfile` (`tar_index`: compressed, pax headers, damaged): iterate it then."""
        path = self.shard.path
        if not (isinstance(path, Path) and path.name.lower().endswith(".tar")):
            return None
        members = tar_index(path)
        return None if members is None else self._selected(members, wanted)

    def _selected(self, members: Sequence[TarMember], wanted: Container[str]) -> Iterator[Record]:
        seen: set[str] = set()
        with self.shard.path.open("rb") as handle:
            for stem, group in _groups(members):
                key = self.key(stem)
                first = key not in seen
                seen.add(key)
                if first and key in wanted:
                    found = _Group(stem)
                    for member in group:
                        found.add(split_member(member.name)[1], _member_bytes(handle, member))
                    yield vet_first(self._finished(found), self.shard.shard_id)

    def __iter__(self) -> Iterator[Record]:
        return guard_records(self.shard.shard_id, self._records())

    def _records(self) -> Iterator[Record]:
        group: _Group | None = None
        failure: SampleError | None = None
        self.meta_schema()  # a tar at a URL starts its stream while typing its meta
        items, self._started = self._started or self._members(), None
        for item in items:
            if isinstance(item, SampleError):  # the shard broke; it is always the last item
                failure = item
                continue
            name, data = item
            stem, ext = split_member(name)
            if group is None or group.key != stem:
                if group is not None:
                    yield self._finished(group)
                group = _Group(stem)
            group.add(ext, data)
        if group is not None:
            yield self._finished(group)
        if failure is not None:
            yield failure
        yield from self._failed_downloads()

    def _failed_downloads(self) -> Iterator[SampleError]:
        """img2dataset's failed URLs, listed in its status file beside the tar."""
        if self._status is None:
            return
        for key, status, message in img2dataset.failed_downloads(self.shard.path):
            error = img2dataset.failure(self.key(key), status, message)
            if error is not None:
                yield error

    def _members(self) -> Iterator[tuple[str, bytes | MemberProblem] | SampleError]:
        """(name, bytes or refusal) per non-folder member; a read failure ends the stream.

        The failure is yielded, not raised, so the group being assembled is still emitted.
        """
        try:
            with open_in_place(self.shard.path) as raw, \
                    tarfile.open(fileobj=raw, mode="r|*", tarinfo=_EndCheckedTarInfo) as tar:
                for info in tar:
                    if not info.isdir():
                        yield info.name, _read_member(tar, info)
        except SHARD_ERRORS as exc:
            yield shard_failure(self.shard.shard_id, exc)

    def _finished(self, group: _Group) -> Record:
        return record_or_error(self.key(group.key), self._sample, group)

    def _sample(self, group: _Group) -> Sample:
        if group.problem is not None:
            raise group.problem
        image = next((group.parts[e] for e in IMAGE_EXTENSIONS if e in group.parts), None)
        text = decode_text(group.parts.get("txt"))
        return Sample(self.key(group.key), image, text, self._meta(group))

    def _meta(self, group: _Group) -> dict[str, Any]:
        raw = group.parts.get("json")
        values: Any = {}
        if raw is not None:
            try:
                values = json.loads(raw)
            except ValueError as exc:
                log.warning("%s: unreadable JSON, meta left empty: %s", self.key(group.key), exc)
        schema, names = self._meta_layout
        fields = values if isinstance(values, dict) else {}
        if self._typed_from_head and not self._unknown_noted:
            self._note_unknown(group.key, fields.keys() - names.keys() - img2dataset.REPEATED_FIELDS)
        renamed = {names[k]: json_text(v) for k, v in fields.items() if k in names}
        return typed_meta(renamed, schema)

    def _note_unknown(self, key: str, unknown: set[str]) -> None:
        """Logs, once per shard, JSON fields a tar at a URL was typed without."""
        if unknown:
            self._unknown_noted = True
            log.warning("%s: JSON fields %s first appear after the first request the meta was typed from; "
                        "they are not kept (img2dataset's status file beside the tar types them all)",
                        self.key(key), ", ".join(sorted(unknown)))


@lru_cache(maxsize=16)
def _local_json_fields(path: Path, size: int, mtime_ns: int) -> FieldTypes:
    """A local tar's JSON fields, kept while the file is unchanged: typing the meta reads every
    JSON member, and `filter` types a source once for the subset's schema and once to copy it
    (read-only for callers)."""
    return _field_types(lambda: _json_objects(path))


def _field_types(objects: Callable[[], Iterable[dict[str, Any]]]) -> FieldTypes:
    """The fields and types of the JSON objects, up to a read failure (iterating reports it)."""
    types = FieldTypes()
    try:
        for fields in objects():
            types.add({k: json_text(v) for k, v in fields.items() if k not in img2dataset.REPEATED_FIELDS})
    except SHARD_ERRORS:
        pass
    return types


def _json_objects(path: Location) -> Iterator[dict[str, Any]]:
    """Every JSON member of the tar as a dict ({} for one that is not a JSON object).

    A plain local tar is read header by header, seeking over every other member; a tar
    whose headers need `tarfile` (pax or GNU long names), a compressed one, or one at a URL
    (`filter` asks before copying it) is streamed through `tarfile` instead."""
    if isinstance(path, Path) and path.name.lower().endswith(".tar"):
        fast = _plain_tar_json(path)
        if fast is not None:
            yield from (_json_dict(raw) for raw in fast)
            return
    with path.open("rb") as handle, tarfile.open(fileobj=handle, mode="r|*") as tar:
        for info in tar:
            if info.isfile() and info.name.lower().endswith(".json"):
                check_size(info.size, info.name)
                member = tar.extractfile(info)
                yield _json_dict(member.read() if member else b"")


def _plain_tar_json(path: Path) -> list[bytes] | None:
    """The JSON members' bytes of an uncompressed tar, found by its headers alone (`tar_index`,
    ten times faster than `tarfile` on small members); None when the tar needs `tarfile`."""
    members = tar_index(path)
    if members is None:
        return None
    with path.open("rb") as handle:
        found = []
        for member in members:
            if member.regular and member.name.lower().endswith(".json"):
                check_size(member.size, member.name)
                handle.seek(member.offset)
                found.append(handle.read(member.size))
    return found


def _regular_names(path: Location) -> list[str]:
    """The names of a plain tar's files, from its headers (`tarfile` reads the unusual ones)."""
    members = tar_index(path) if isinstance(path, Path) else None
    if members is not None:
        return [m.name for m in members if m.regular]
    with tarfile.open(path, "r:") as tar:
        return [m.name for m in tar.getmembers() if m.isfile()]


def _groups(members: Sequence[TarMember]) -> Iterator[tuple[str, list[TarMember]]]:
    """Members grouped by key, as `_records` groups them: adjacent members of one stem (folders
    are no members)."""
    stem, group = None, []
    for member in members:
        if member.folder:
            continue
        name_stem = split_member(member.name)[0]
        if group and name_stem != stem:
            yield stem, group  # type: ignore[misc]
            group = []
        stem = name_stem
        group.append(member)
    if group:
        yield stem, group  # type: ignore[misc]


def _member_bytes(handle: BinaryIO, member: TarMember) -> bytes | MemberProblem:
    """`_read_member` for a member `tar_index` found: checked on its header, then read in place."""
    try:
        check_archive_member(member.name, member.size, regular=member.regular)
    except MemberProblem as problem:
        return problem
    handle.seek(member.offset)
    return handle.read(member.size)


def _json_dict(raw: bytes) -> dict[str, Any]:
    try:
        value = json.loads(raw)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


class _EndCheckedTarInfo(tarfile.TarInfo):
    """Header parsing that reports a tar cut off between members.

    `tarfile` silently ends the iteration when the data stops at a header boundary, which
    would make a truncated shard look complete; a real tar ends with a zero block instead.
    """

    @classmethod
    def fromtarfile(cls, tarfile_: tarfile.TarFile) -> tarfile.TarInfo:
        try:
            return super().fromtarfile(tarfile_)
        except (tarfile.EmptyHeaderError, tarfile.TruncatedHeaderError) as exc:
            raise tarfile.ReadError(f"tar ends without its end-of-archive block ({exc})") from None


def _read_member(tar: tarfile.TarFile, info: tarfile.TarInfo) -> bytes | MemberProblem:
    """The member's bytes, or why they must not be read (checked on the header alone)."""
    try:
        check_archive_member(info.name, info.size, regular=info.isfile())
    except MemberProblem as problem:
        return problem
    handle = tar.extractfile(info)
    return handle.read() if handle else b""


def member_mtime() -> int:
    """The modification time a written tar gives its members: now, in whole seconds."""
    return int(time.time())


@register_writer
class WebDatasetWriter(AtomicShardWriter):
    """Writes img2dataset's tar layout; the JSON holds key, meta and `extra` columns.

    Member names are the key's member part without an image extension and with dots
    replaced (a dot would end the WebDataset key), e.g. `part-1/abc.png` -> `abc.png`.
    """

    format_name = "webdataset"
    suffix = ".tar"

    def _open(self) -> None:
        self._file = open(self.tmp, "wb")
        # one time for the members of one tar: when it was begun
        self._tar = TarOut(self._file, mtime=member_mtime(), mode=0o644)

    def write(self, sample: Sample, *, extra: dict[str, Any] | None = None) -> None:
        stem = strip_image_extension(writable_member(sample.key)).replace(".", "_")
        if sample.image is not None:
            self._add(f"{stem}.{image_extension(sample.image)}", sample.image)
        if sample.text is not None:
            self._add(f"{stem}.txt", sample.text.encode("utf-8"))
        payload = {"key": stem, **self.columns_of(sample, extra)}
        self._add(f"{stem}.json", json.dumps(payload, default=str).encode("utf-8"))
        self.count += 1

    def _add(self, name: str, data: bytes) -> None:
        self._tar.add(name, data)

    def _finish(self) -> None:
        self._tar.close()
        self._file.close()

    def _release(self) -> None:
        self._file.close()
