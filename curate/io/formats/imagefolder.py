"""A folder of images with a CSV naming them: `imgId,prompt` or `file_name,caption`.

`imgId` (Kaggle's image-to-prompt layout) is the file name without its extension, so the
reader looks for `<imgId>.png|jpg|jpeg|webp`; `file_name` is a path relative to the folder.
The folder is the shard (its name is the shard id), the CSV's rows are the members, and
every other CSV column becomes string meta (except `RESERVED_COLUMNS` such as `similarity`,
which later steps write themselves). A file name is only opened after it has been
shown to resolve inside the folder.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Iterator, TextIO

import pyarrow as pa

from curate.io.formats.base import ShardReader, register_reader, register_writer
from curate.io.formats.naming import IMAGE_EXTENSIONS, image_file_name
from curate.io.formats.writing import AtomicShardWriter
from curate.io.location import Location
from curate.io.safety import (
    MAX_MEMBER_BYTES,
    SHARD_ERRORS,
    MemberProblem,
    check_member_name,
    check_size,
    check_text,
    guard_records,
    record_or_error,
    resolve_inside,
)
from curate.schemas.sample import ErrorKind, Record, Sample
from curate.schemas.tables import RESERVED_COLUMNS

KEY_COLUMNS = ("file_name", "imgId")
CAPTION_COLUMNS = ("caption", "prompt", "text")
CAPTIONS_FILE = "captions.csv"
# The key column whose cells are file names without an extension, to be looked up.
_STEM_KEY_COLUMNS = frozenset({"imgId"})


@dataclass(frozen=True)
class CsvLayout:
    """The folder's CSV and which of its columns hold the image name, caption and meta."""

    csv: Path
    key: str
    caption: str
    meta: tuple[str, ...]


def open_csv(path: Location) -> TextIO:
    """UTF-8 (BOM tolerated); undecodable bytes survive as surrogates so a bad cell fails
    its own row (NON_UTF8_TEXT) rather than the whole shard. A cell may be as large as a
    member may be (Python's csv stops at 128 KiB by default, which would make a subset with
    one long caption unreadable)."""
    csv.field_size_limit(MAX_MEMBER_BYTES)
    return path.open("r", newline="", encoding="utf-8-sig", errors="surrogateescape")


def find_layout(folder: Location) -> CsvLayout | None:
    """The first CSV (sorted by name) in `folder` whose header has a key and a caption column."""
    for path in sorted(p for p in folder.iterdir() if p.suffix.lower() == ".csv" and p.is_file()):
        try:
            with open_csv(path) as fh:
                header = next(csv.reader(fh), [])
        except SHARD_ERRORS:
            continue
        key = next((c for c in KEY_COLUMNS if c in header), None)
        caption = next((c for c in CAPTION_COLUMNS if c in header), None)
        if key and caption:
            skip = {key, caption, ""} | RESERVED_COLUMNS
            meta = tuple(dict.fromkeys(c for c in header if c not in skip))
            return CsvLayout(csv=path, key=key, caption=caption, meta=meta)
    return None


@register_reader
class ImageFolderReader(ShardReader):
    """Streams the CSV row by row, reading each image the row names."""

    format_name = "imagefolder"

    @classmethod
    def matches(cls, path: Location) -> bool:
        try:
            return path.is_dir() and find_layout(path) is not None
        except OSError:
            return False

    @cached_property
    def _layout(self) -> CsvLayout | None:
        try:
            return find_layout(self.shard.path)
        except OSError:
            return None

    def meta_schema(self) -> pa.Schema:
        names = self._layout.meta if self._layout else ()
        return pa.schema([pa.field(name, pa.string()) for name in names])

    def estimate_count(self) -> int | None:
        if self._layout is None:
            return None
        try:
            with open_csv(self._layout.csv) as fh:
                return max(sum(1 for _ in csv.reader(fh)) - 1, 0)
        except SHARD_ERRORS:
            return None

    def __iter__(self) -> Iterator[Record]:
        return guard_records(self.shard.shard_id, self._records())

    def _records(self) -> Iterator[Record]:
        layout = find_layout(self.shard.path)
        if layout is None:
            raise ValueError(f"no CSV with columns {KEY_COLUMNS} and {CAPTION_COLUMNS}")
        with open_csv(layout.csv) as fh:
            for row in csv.DictReader(fh):
                name = row.get(layout.key) or ""
                yield record_or_error(self.key(name), self._sample, name, row, layout)

    def _sample(self, name: str, row: dict[str, Any], layout: CsvLayout) -> Sample:
        member, path = self._locate(name, layout)
        check_size(path.stat().st_size, member)
        meta = {col: check_text(row.get(col)) for col in layout.meta}
        text = check_text(row.get(layout.caption))
        return Sample(self.key(member), path.read_bytes(), text, meta)

    def _locate(self, name: str, layout: CsvLayout) -> tuple[str, Path]:
        """The member (file name) the row names and its path, checked to lie inside the folder."""
        check_member_name(name)
        if layout.key in _STEM_KEY_COLUMNS:
            candidates = [f"{name}.{ext}" for ext in IMAGE_EXTENSIONS] + [name]
        else:
            candidates = [name]
        for candidate in candidates:
            path = resolve_inside(self.shard.path, candidate)
            if path.is_file():
                return candidate, path
        raise MemberProblem(ErrorKind.MISSING_IMAGE, f"no image file for {name!r} in the folder")


@register_writer
class ImageFolderWriter(AtomicShardWriter):
    """Writes images under the folder plus `captions.csv` (file_name, caption, meta, extra)."""

    format_name = "imagefolder"
    suffix = ""

    def __init__(
        self,
        path: Path,
        *,
        meta_schema: pa.Schema | None = None,
        extra_schema: pa.Schema | None = None,
    ) -> None:
        super().__init__(path, meta_schema=meta_schema, extra_schema=extra_schema)
        self.tmp.mkdir()
        self._rows: list[dict[str, Any]] = []
        self._names: set[str] = set()

    def write(self, sample: Sample, *, extra: dict[str, Any] | None = None) -> None:
        if sample.image is None:
            raise ValueError(f"cannot write {sample.key!r} to an image folder: no image")
        name = image_file_name(sample.key, sample.image)
        if name in self._names:
            raise ValueError(f"two samples map to the same file name {name!r}")
        self._names.add(name)
        target = self.tmp / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(sample.image)
        row = {"file_name": name, "caption": sample.text, **sample.meta, **(extra or {})}
        self._rows.append(row)
        self.count += 1

    def _finish(self) -> None:
        declared = ["file_name", "caption", *self.meta_schema.names, *self.extra_schema.names]
        header = list(dict.fromkeys(declared + [k for row in self._rows for k in row]))
        with open(self.tmp / CAPTIONS_FILE, "w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=header)
            writer.writeheader()
            writer.writerows(self._rows)
