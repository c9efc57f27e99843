"""A folder of images with a CSV naming them: `imgId,prompt` or `file_name,caption`.

`imgId` (Kaggle's image-to-prompt layout, `data/prompts.csv` with the pictures in
`data/images/`) is the file name without its extension, so the reader looks for
`<imgId>.png|jpg|jpeg|webp` beside the CSV, then in an `images/` folder beside it;
`file_name` is a path relative to the folder (what `datasets`' imagefolder `metadata.csv`
holds). The folder is the shard (its name is the shard id), the CSV's rows are the members,
and every other CSV column becomes string meta; one named like a column later steps write
themselves (`similarity`, `text`, ... in `RESERVED_COLUMNS`) is kept as `source_<name>`.
`--image-column`, `--text-column` and `--key-column` name the file-name, caption and id
columns when the header's names are others. A file name is only opened after it has been
shown to resolve inside the folder.

The writer writes what `datasets.load_dataset("imagefolder", data_dir=...)` reads: the
images and a `metadata.csv` whose `file_name` column names them, beside the caption, meta
and extra columns.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Iterator, TextIO

import pyarrow as pa

from curate.io.formats.base import ShardReader, register_reader, register_writer
from curate.io.formats.meta import renamed_columns
from curate.io.formats.naming import IMAGE_EXTENSIONS, image_file_name
from curate.io.formats.writing import AtomicShardWriter
from curate.io.location import Location
from curate.io.safety import (
    SHARD_ERRORS,
    MemberProblem,
    check_member_name,
    check_size,
    check_text,
    guard_records,
    record_or_error,
    resolve_inside,
)
from curate.schemas.config.flow import ColumnsConfig
from curate.schemas.sample import ErrorKind, Record, Sample
from curate.schemas.tables import RESERVED_COLUMNS

KEY_COLUMNS = ("file_name", "imgId")
CAPTION_COLUMNS = ("caption", "prompt", "text")
CAPTIONS_FILE = "metadata.csv"  # the name `datasets`' imagefolder loader looks for
# The key column whose cells are file names without an extension, to be looked up.
_STEM_KEY_COLUMNS = frozenset({"imgId"})
IMAGES_FOLDER = "images"  # where Kaggle's layout keeps the pictures, beside the CSV


@dataclass(frozen=True)
class CsvLayout:
    """The folder's CSV and which of its columns hold the image name, caption, id and meta.

    `meta` maps a CSV column to the meta name it travels under.
    """

    csv: Path
    key: str
    caption: str
    meta: dict[str, str]
    id: str | None = None


def open_csv(path: Location) -> TextIO:
    """UTF-8 (BOM tolerated); undecodable bytes survive as surrogates so a bad cell fails
    its own row (NON_UTF8_TEXT) rather than the whole shard."""
    return path.open("r", newline="", encoding="utf-8-sig", errors="surrogateescape")


def find_layout(folder: Location, columns: ColumnsConfig | None = None) -> CsvLayout | None:
    """The first CSV (sorted by name) in `folder` whose header has a key and a caption column
    (the ones `columns` names, when it names them)."""
    columns = columns or ColumnsConfig()
    for path in sorted(p for p in folder.iterdir() if p.suffix.lower() == ".csv" and p.is_file()):
        try:
            with open_csv(path) as fh:
                header = next(csv.reader(fh), [])
        except SHARD_ERRORS:
            continue
        key = _column(header, columns.image_column, KEY_COLUMNS)
        caption = _column(header, columns.text_column, CAPTION_COLUMNS)
        id_ = _column(header, columns.key_column, ())
        if key and caption and (id_ or not columns.key_column):
            names = [c for c in dict.fromkeys(header) if c not in {key, caption, id_, ""}]
            meta = renamed_columns(names, RESERVED_COLUMNS)
            return CsvLayout(csv=path, key=key, caption=caption, meta=meta, id=id_)
    return None


def _column(header: list[str], named: str | None, conventional: tuple[str, ...]) -> str | None:
    if named is not None:
        return named if named in header else None
    return next((c for c in conventional if c in header), None)


@register_reader
class ImageFolderReader(ShardReader):
    """Streams the CSV row by row, reading each image the row names."""

    format_name = "imagefolder"

    @classmethod
    def matches(cls, path: Location) -> bool:
        return cls.claims(path, ColumnsConfig())

    @classmethod
    def claims(cls, path: Location, columns: ColumnsConfig) -> bool:
        try:
            return path.is_dir() and find_layout(path, columns) is not None
        except OSError:
            return False

    @cached_property
    def _layout(self) -> CsvLayout | None:
        try:
            return find_layout(self.shard.path, self.shard.columns)
        except OSError:
            return None

    def meta_schema(self) -> pa.Schema:
        names = self._layout.meta.values() if self._layout else ()
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
        layout = find_layout(self.shard.path, self.shard.columns)
        if layout is None:
            raise ValueError(f"no CSV with columns {KEY_COLUMNS} and {CAPTION_COLUMNS}")
        with open_csv(layout.csv) as fh:
            for row in csv.DictReader(fh):
                name = row.get(layout.key) or ""
                label = (row.get(layout.id) or "") if layout.id else name
                yield record_or_error(self.key(label), self._sample, name, label, row, layout)

    def _sample(self, name: str, label: str, row: dict[str, Any], layout: CsvLayout) -> Sample:
        member, path = self._locate(name, layout)
        check_size(path.stat().st_size, member)
        meta = {new: check_text(row.get(col)) for col, new in layout.meta.items()}
        text = check_text(row.get(layout.caption))
        return Sample(self.key(check_text(label) if layout.id else member), path.read_bytes(), text, meta)

    def _locate(self, name: str, layout: CsvLayout) -> tuple[str, Path]:
        """The member (the image's path in the folder) the row names and its path, checked to lie
        inside the folder: `imgId`s are looked up with each image extension, beside the CSV
        and then in `images/`; a file name is taken where it points."""
        check_member_name(name)
        if layout.key in _STEM_KEY_COLUMNS:
            names = [f"{name}.{ext}" for ext in IMAGE_EXTENSIONS] + [name]
            candidates = names + [f"{IMAGES_FOLDER}/{n}" for n in names]
        else:
            candidates = [name]
        for candidate in candidates:
            path = resolve_inside(self.shard.path, candidate)
            if path.is_file():
                return candidate, path
        raise MemberProblem(ErrorKind.MISSING_IMAGE, f"no image file for {name!r} in the folder")


@register_writer
class ImageFolderWriter(AtomicShardWriter):
    """Writes images under the folder plus `metadata.csv` (file_name, caption, meta, extra)."""

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
        row = {"file_name": name, "caption": sample.text, **self.columns_of(sample, extra)}
        self._rows.append(row)
        self.count += 1

    def _finish(self) -> None:
        declared = ["file_name", "caption", *self.written_meta_schema().names, *self.extra_schema.names]
        header = list(dict.fromkeys(declared + [k for row in self._rows for k in row]))
        with open(self.tmp / CAPTIONS_FILE, "w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=header)
            writer.writeheader()
            writer.writerows(self._rows)
