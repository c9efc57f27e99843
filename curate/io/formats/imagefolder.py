"""A folder of images with a CSV naming them: `imgId,prompt` or `file_name,caption`.

`imgId` (Kaggle's image-to-prompt layout, `data/prompts.csv` with the pictures in
`data/images/`) is the file name without its extension, so the reader looks for
`<imgId>.png|jpg|jpeg|webp` beside the CSV, then in an `images/` folder beside it;
`file_name` is a path relative to the folder (what `datasets`' imagefolder metadata
holds). A folder without such a CSV may hold `datasets`' typed `metadata.parquet` instead.
The folder is the shard (its name is the shard id), the table's rows are the members, and
every other column becomes meta (CSV cells as strings, Parquet columns with their types);
one named like a column later steps write themselves (`similarity`, `text`, ... in
`RESERVED_COLUMNS`) is kept as `<name>_from_source`. `--image-column`, `--text-column` and
`--key-column` name the file-name, caption and id columns when the header's names are
others. A file name is only opened after it has been shown to resolve inside the folder.

The writer writes what `datasets.load_dataset("imagefolder", data_dir=...)` reads as one
split: the images and a `metadata.parquet` whose `file_name` column names them, beside the
caption, meta and extra columns. Parquet, not CSV: every output folder of a subset then
declares the same column types (CSV types are guessed per file, and `datasets` refuses
folders whose guesses differ).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path
from typing import Any, Iterator, TextIO

import pyarrow as pa
import pyarrow.parquet as pq

from curate.io.formats.base import ShardReader, register_reader, register_writer
from curate.io.formats.meta import renamed_columns
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
from curate.io.tables import table_rows, table_schema
from curate.schemas.config.flow import ColumnsConfig
from curate.schemas.sample import ErrorKind, Record, Sample
from curate.schemas.tables import RESERVED_COLUMNS

KEY_COLUMNS = ("file_name", "imgId")
CAPTION_COLUMNS = ("caption", "prompt", "text")
CAPTIONS_FILE = "metadata.parquet"  # a name `datasets`' imagefolder loader looks for
# The key column whose cells are file names without an extension, to be looked up.
_STEM_KEY_COLUMNS = frozenset({"imgId"})
IMAGES_FOLDER = "images"  # where Kaggle's layout keeps the pictures, beside the CSV


@dataclass(frozen=True)
class CsvLayout:
    """The folder's table (a CSV, or a `metadata.parquet`) and which of its columns hold the
    image name, caption, id and meta.

    `meta` maps a column to the meta name it travels under; `types` is the meta schema (all
    strings for a CSV).
    """

    csv: Path
    key: str
    caption: str
    meta: dict[str, str]
    id: str | None = None
    types: pa.Schema | None = None

    @property
    def is_csv(self) -> bool:
        return self.csv.suffix.lower() == ".csv"

    def meta_schema(self) -> pa.Schema:
        if self.types is not None:
            return self.types
        return pa.schema([pa.field(name, pa.string()) for name in self.meta.values()])


def open_csv(path: Location) -> TextIO:
    """UTF-8 (BOM tolerated); undecodable bytes survive as surrogates so a bad cell fails
    its own row (NON_UTF8_TEXT) rather than the whole shard. A cell may be as large as a
    member may be (Python's csv stops at 128 KiB by default, which would make a subset with
    one long caption unreadable)."""
    csv.field_size_limit(MAX_MEMBER_BYTES)
    return path.open("r", newline="", encoding="utf-8-sig", errors="surrogateescape")


def find_layout(folder: Location, columns: ColumnsConfig | None = None) -> CsvLayout | None:
    """The first CSV (sorted by name) in `folder` whose header has a key and a caption column
    (the ones `columns` names, when it names them); else such a `metadata.parquet`."""
    columns = columns or ColumnsConfig()
    for path in sorted(p for p in folder.iterdir() if p.suffix.lower() == ".csv" and p.is_file()):
        try:
            with open_csv(path) as fh:
                header = next(csv.reader(fh), [])
        except SHARD_ERRORS:
            continue
        layout = _layout(path, header, columns)
        if layout is not None:
            return layout
    table = folder / CAPTIONS_FILE
    try:
        schema = table_schema(table) if table.is_file() else None
    except SHARD_ERRORS:
        return None
    layout = _layout(table, schema.names, columns) if schema is not None else None
    if layout is None:
        return None
    types = pa.schema([schema.field(source).with_name(name) for source, name in layout.meta.items()])
    return replace(layout, types=types)


def _layout(path: Location, header: list[str], columns: ColumnsConfig) -> CsvLayout | None:
    key = _column(header, columns.image_column, KEY_COLUMNS)
    caption = _column(header, columns.text_column, CAPTION_COLUMNS)
    id_ = _column(header, columns.key_column, ())
    if not (key and caption and (id_ or not columns.key_column)):
        return None
    names = [c for c in dict.fromkeys(header) if c not in {key, caption, id_, ""}]
    return CsvLayout(csv=path, key=key, caption=caption, meta=renamed_columns(names, RESERVED_COLUMNS), id=id_)


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
        return self._layout.meta_schema() if self._layout else pa.schema([])

    def estimate_count(self) -> int | None:
        if self._layout is None:
            return None
        try:
            if not self._layout.is_csv:
                return table_rows(self._layout.csv)
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
        for row in _rows(layout):
            name = str(row.get(layout.key) or "")
            label = str(row.get(layout.id) or "") if layout.id else name
            yield record_or_error(self.key(label), self._sample, name, label, row, layout)

    def _sample(self, name: str, label: str, row: dict[str, Any], layout: CsvLayout) -> Sample:
        member, path = self._locate(name, layout)
        check_size(path.stat().st_size, member)
        meta = {new: check_text(row.get(col)) if layout.is_csv else row.get(col) for col, new in layout.meta.items()}
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


def _rows(layout: CsvLayout) -> Iterator[dict[str, Any]]:
    """The table's rows as dicts, streamed (a CSV line by line, Parquet by record batches)."""
    if layout.is_csv:
        with open_csv(layout.csv) as fh:
            yield from csv.DictReader(fh)
        return
    with pq.ParquetFile(layout.csv) as pf:
        for batch in pf.iter_batches(batch_size=256):
            yield from batch.to_pylist()


@register_writer
class ImageFolderWriter(AtomicShardWriter):
    """Writes images under the folder plus `metadata.parquet` (file_name, caption, meta, extra)."""

    format_name = "imagefolder"
    suffix = ""

    def _open(self) -> None:
        self.tmp.mkdir()
        self._rows: list[dict[str, Any]] = []
        self._names: set[str] = set()

    @classmethod
    def subset_member(cls, position: int, key: str) -> str:
        """Subsets name images by position (`000042.png`): `datasets` takes any file or folder
        name holding a split word (`train`, `test_`, `-val-`, ...) for a split and would cut
        the subset apart; the run key stays in `source_key`."""
        return f"{position:06d}"

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
        """The metadata table: declared columns with their types first, any others inferred."""
        fields = {"file_name": pa.field("file_name", pa.string()), "caption": pa.field("caption", pa.string())}
        for declared in [*self.written_meta_schema(), *self.extra_schema]:
            fields.setdefault(declared.name, declared)
        rest = [n for n in dict.fromkeys(k for row in self._rows for k in row) if n not in fields]
        if rest:
            fields.update({f.name: f for f in pa.Table.from_pylist([{n: r.get(n) for n in rest} for r in self._rows]).schema})
        schema = pa.schema(list(fields.values()))
        pq.write_table(pa.Table.from_pylist(self._rows, schema=schema), self.tmp / CAPTIONS_FILE)
