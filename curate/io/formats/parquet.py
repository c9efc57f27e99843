"""Parquet shards holding image bytes: img2dataset's parquet output and `datasets` images.

The image column is a binary column with a conventional name (`jpg`, `png`, `webp`,
`image`, ...) or a Hugging Face image struct `{bytes, path}` (any column the file's
`huggingface` metadata declares an Image, or any struct with a binary `bytes` field).
Files are streamed by small record batches (a URL by ranged reads, row group by row group);
the member name is the `key` column when there is one, else the zero-padded row index.
Every other scalar column passes through as meta, except the names later steps write
themselves (`similarity`, `text`, ... in `RESERVED_COLUMNS`), so a filtered subset read back
as input does not carry stale scores.
"""

from __future__ import annotations

import json
from contextlib import nullcontext
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Iterator

import pyarrow as pa
import pyarrow.parquet as pq

from curate.io.formats.base import ShardReader, register_reader, register_writer
from curate.io.formats.meta import conform_meta, is_scalar
from curate.io.formats.naming import writable_member
from curate.io.formats.writing import AtomicShardWriter
from curate.io.location import Location, RemotePath, open_in_place
from curate.io.safety import (
    SHARD_ERRORS,
    check_text,
    decode_text,
    guard_records,
    record_or_error,
)
from curate.io.tables import table_schema
from curate.schemas.sample import Record, Sample
from curate.schemas.tables import RESERVED_COLUMNS

IMAGE_COLUMNS = ("jpg", "png", "webp", "jpeg", "image", "img", "image_bytes")
TEXT_COLUMNS = ("txt", "caption", "text", "prompt")
KEY_COLUMN = "key"
BATCH_ROWS = 64
STREAM_BUFFER = 2**20  # a remote column chunk is read page by page through a buffer this size
# (and not pre-buffered: pyarrow would fetch every row group a batch iterator may visit, the whole file)
MIN_INDEX_DIGITS = 6


@dataclass(frozen=True)
class ParquetLayout:
    """Which columns of a file hold the image, the caption, the key, and the meta."""

    image: str
    image_is_struct: bool
    text: str | None
    key: str | None
    meta: pa.Schema

    @property
    def columns(self) -> list[str]:
        named = [self.image, self.text, self.key]
        return [c for c in named if c is not None] + self.meta.names


def find_layout(schema: pa.Schema) -> ParquetLayout | None:
    """The file's layout, or None when no column holds image bytes (not an image shard)."""
    image = _image_column(schema)
    if image is None:
        return None
    text = next((c for c in TEXT_COLUMNS if c in schema.names and _is_text(schema, c)), None)
    key = KEY_COLUMN if KEY_COLUMN in schema.names and KEY_COLUMN != image else None
    taken = {image, text, key} | RESERVED_COLUMNS
    meta = pa.schema([f for f in schema if f.name not in taken and is_scalar(f.type)])
    struct = pa.types.is_struct(schema.field(image).type)
    return ParquetLayout(image=image, image_is_struct=struct, text=text, key=key, meta=meta)


def _image_column(schema: pa.Schema) -> str | None:
    declared = _hf_image_features(schema)
    for name in [*declared, *IMAGE_COLUMNS, *schema.names]:
        if name not in schema.names:
            continue
        if _holds_image(schema.field(name).type, named=name in IMAGE_COLUMNS):
            return name
    return None


def _holds_image(type_: pa.DataType, *, named: bool) -> bool:
    """Binary columns count only under a conventional name; `{bytes, ...}` structs always."""
    if pa.types.is_struct(type_):
        idx = type_.get_field_index("bytes")
        return idx >= 0 and _is_binary(type_.field(idx).type)
    return named and _is_binary(type_)


def _hf_image_features(schema: pa.Schema) -> list[str]:
    """Columns the `datasets` library declared as `Image` in the file's schema metadata."""
    raw = (schema.metadata or {}).get(b"huggingface")
    try:
        features = json.loads(raw)["info"]["features"] if raw else {}
    except (ValueError, KeyError, TypeError):
        return []
    return [n for n, f in features.items() if isinstance(f, dict) and f.get("_type") == "Image"]


def _is_binary(type_: pa.DataType) -> bool:
    return pa.types.is_binary(type_) or pa.types.is_large_binary(type_)


def _is_text(schema: pa.Schema, name: str) -> bool:
    type_ = schema.field(name).type
    return pa.types.is_string(type_) or pa.types.is_large_string(type_) or _is_binary(type_)


@register_reader
class ParquetReader(ShardReader):
    """Streams image rows batch by batch; only the needed columns are read."""

    format_name = "parquet"
    streams = True

    @classmethod
    def matches(cls, path: Location) -> bool:
        """A Parquet file with an image-bytes column (an unreadable footer also matches, so
        the broken file is reported instead of silently skipped)."""
        if not (path.is_file() and path.suffix.lower() == ".parquet"):
            return False
        try:
            return find_layout(table_schema(path)) is not None
        except SHARD_ERRORS:
            return True

    @cached_property
    def _layout(self) -> ParquetLayout | None:
        try:
            return find_layout(table_schema(self.shard.path))
        except SHARD_ERRORS:
            return None

    def meta_schema(self) -> pa.Schema:
        return self._layout.meta if self._layout else pa.schema([])

    def estimate_count(self) -> int | None:
        try:
            return pq.ParquetFile(self.shard.path).metadata.num_rows
        except SHARD_ERRORS:
            return None

    def __iter__(self) -> Iterator[Record]:
        return guard_records(self.shard.shard_id, self._records())

    def _records(self) -> Iterator[Record]:
        remote = isinstance(self.shard.path, RemotePath)  # read by ranges, row group by row group
        with open_in_place(self.shard.path, ahead=False) if remote else nullcontext(self.shard.path) as source, \
                pq.ParquetFile(source, buffer_size=STREAM_BUFFER if remote else 0, pre_buffer=not remote) as pf:
            layout = find_layout(pf.schema_arrow)
            if layout is None:
                raise ValueError("no column holds image bytes")
            digits = max(MIN_INDEX_DIGITS, len(str(pf.metadata.num_rows)))
            index = 0
            for batch in pf.iter_batches(batch_size=BATCH_ROWS, columns=layout.columns):
                for row in batch.to_pylist():
                    member = _member(row, layout, index, digits)
                    yield record_or_error(self.key(member), self._sample, member, row, layout)
                    index += 1

    def _sample(self, member: str, row: dict[str, Any], layout: ParquetLayout) -> Sample:
        image = row[layout.image]
        if layout.image_is_struct:
            image = image.get("bytes") if image else None  # path-only images: missing
        raw_text = row[layout.text] if layout.text else None
        text = decode_text(raw_text) if isinstance(raw_text, bytes) else check_text(raw_text)
        return Sample(self.key(member), image, text, conform_meta(row, layout.meta))


def _member(row: dict[str, Any], layout: ParquetLayout, index: int, digits: int) -> str:
    """The key column's value, else the zero-padded row index (stable across reads)."""
    value = row.get(layout.key) if layout.key else None
    return str(value) if value is not None and str(value) else f"{index:0{digits}d}"


@register_writer
class ParquetWriter(AtomicShardWriter):
    """Writes img2dataset-style Parquet: `key`, `image` (bytes), `caption`, meta, extra.

    The schema is fixed at the first flush: declared meta/extra schemas first, then any
    other meta or extra names present in that first batch, typed by inference. A later
    sample bringing a column the schema lacks is refused rather than silently dropped.
    """

    format_name = "parquet"
    suffix = ".parquet"
    BASE_FIELDS = (("key", pa.string()), ("image", pa.binary()), ("caption", pa.string()))

    def __init__(
        self,
        path: Path,
        *,
        meta_schema: pa.Schema | None = None,
        extra_schema: pa.Schema | None = None,
        batch_rows: int = 256,
    ) -> None:
        super().__init__(path, meta_schema=meta_schema, extra_schema=extra_schema)
        self.batch_rows = batch_rows
        self._rows: list[dict[str, Any]] = []
        self._schema: pa.Schema | None = None
        self._writer: pq.ParquetWriter | None = None

    def write(self, sample: Sample, *, extra: dict[str, Any] | None = None) -> None:
        columns = {**sample.meta, **(extra or {})}
        clash = set(columns) & {name for name, _ in self.BASE_FIELDS}
        if clash:
            raise ValueError(f"meta/extra columns {sorted(clash)} clash with the shard's own")
        member = writable_member(sample.key)
        self._rows.append({"key": member, "image": sample.image, "caption": sample.text, **columns})
        self.count += 1
        if len(self._rows) >= self.batch_rows:
            self._flush()

    def _flush(self) -> None:
        if not self._rows:
            return
        if self._schema is None:
            self._schema = self._infer_schema(self._rows)
            self._writer = pq.ParquetWriter(self.tmp, self._schema)
        unknown = set().union(*self._rows) - set(self._schema.names)
        if unknown:
            raise ValueError(f"columns {sorted(unknown)} were not in the shard's first batch")
        self._writer.write_table(pa.Table.from_pylist(self._rows, schema=self._schema))
        self._rows = []

    def _infer_schema(self, rows: list[dict[str, Any]]) -> pa.Schema:
        fields = {name: pa.field(name, type_) for name, type_ in self.BASE_FIELDS}
        for declared in [*self.meta_schema, *self.extra_schema]:
            fields.setdefault(declared.name, declared)
        rest = [n for n in dict.fromkeys(k for row in rows for k in row) if n not in fields]
        if rest:
            sample = pa.Table.from_pylist([{n: row.get(n) for n in rest} for row in rows])
            fields.update({f.name: f for f in sample.schema})
        return pa.schema(list(fields.values()))

    def _finish(self) -> None:
        self._flush()
        if self._writer is None:  # no sample at all: still a valid, empty shard
            self._writer = pq.ParquetWriter(self.tmp, self._infer_schema([]))
        self._writer.close()

    def _release(self) -> None:
        if self._writer is not None:
            self._writer.close()
