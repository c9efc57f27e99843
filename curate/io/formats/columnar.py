"""What the column formats share (`parquet`, `arrow`): which columns hold what, and rows to samples.

The image column is a binary column with a conventional name (`jpg`, `png`, `webp`,
`image`, ...) or a Hugging Face image struct `{bytes, path}` (any column the file's
`huggingface` metadata declares an Image, or any struct with a binary `bytes` field); the
user may name it (`--image-column`), and the caption and key columns too. The member name
is the key column's value when there is one, else the zero-padded row index. Every other
scalar column passes through as meta; one named like a column later steps write themselves
(`similarity`, `text`, ... in `RESERVED_COLUMNS`) is kept as `<name>_from_source`.

A `datasets` image stored as a path (`{bytes: null, path}`, what `datasets` writes for images
added from files) is read from that path: a relative one inside the shard's folder, an
absolute one as it is, with the checks archive members pass (`io/safety.py`). img2dataset's
rows without image bytes carry its `status`; they become `download_failed` errors.
"""

from __future__ import annotations

import json
from abc import abstractmethod
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pyarrow as pa

from curate.io.formats import img2dataset
from curate.io.formats.base import ShardReader
from curate.io.formats.meta import conform_meta, is_scalar, renamed_columns
from curate.io.location import Location
from curate.io.safety import (
    SHARD_ERRORS,
    check_size,
    check_text,
    decode_text,
    guard_records,
    record_or_error,
    referenced_file,
)
from curate.schemas.config.flow import ColumnsConfig
from curate.schemas.sample import Record, Sample
from curate.schemas.tables import RESERVED_COLUMNS

IMAGE_COLUMNS = ("jpg", "png", "webp", "jpeg", "image", "img", "image_bytes")
TEXT_COLUMNS = ("txt", "caption", "text", "prompt")
KEY_COLUMN = "key"
BATCH_ROWS = 64
MIN_INDEX_DIGITS = 6


@dataclass(frozen=True)
class ColumnLayout:
    """Which columns of a file hold the image, the caption, the key, and the meta.

    `meta` is the meta schema under the names the meta travels with; `meta_sources` the
    file's column of each of its fields, in the same order.
    """

    image: str
    image_is_struct: bool
    text: str | None
    key: str | None
    meta: pa.Schema
    meta_sources: tuple[str, ...]
    status: bool  # img2dataset's status and error_message columns are there

    @property
    def columns(self) -> list[str]:
        named = [self.image, self.text, self.key]
        return list(dict.fromkeys([c for c in named if c is not None] + list(self.meta_sources)))

    def meta_of(self, row: dict[str, Any]) -> dict[str, Any]:
        values = {field.name: row.get(source) for field, source in zip(self.meta, self.meta_sources)}
        return conform_meta(values, self.meta)


def find_layout(schema: pa.Schema, columns: ColumnsConfig | None = None) -> ColumnLayout | None:
    """The file's layout, or None when no column holds image bytes (not an image shard).

    Columns the user named must exist: a missing caption or key column raises ValueError
    (the shard's error names it); a missing image column means the file is no image shard.
    """
    columns = columns or ColumnsConfig()
    image = _named(schema, columns.image_column, "--image-column", required=False) or _image_column(schema)
    if image is None:
        return None
    text = _named(schema, columns.text_column, "--text-column") or next(
        (c for c in TEXT_COLUMNS if c in schema.names and _is_text(schema, c) and c != image), None)
    key = _named(schema, columns.key_column, "--key-column") or (
        KEY_COLUMN if KEY_COLUMN in schema.names and KEY_COLUMN != image else None)
    taken = {image, text, key}
    sources = [f for f in schema if f.name not in taken and is_scalar(f.type)]
    names = renamed_columns([f.name for f in sources], RESERVED_COLUMNS)
    meta = pa.schema([f.with_name(names[f.name]) for f in sources])
    struct = pa.types.is_struct(schema.field(image).type)
    return ColumnLayout(image=image, image_is_struct=struct, text=text, key=key, meta=meta,
                        meta_sources=tuple(f.name for f in sources), status=img2dataset.has_status(schema))


def _named(schema: pa.Schema, name: str | None, option: str, *, required: bool = True) -> str | None:
    if name is None or name in schema.names:
        return name
    if not required:
        return None
    raise ValueError(f"no column '{name}' ({option}); columns: {', '.join(schema.names)}")


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


class ColumnarReader(ShardReader):
    """Streams image rows batch by batch; only the needed columns are read.

    Subclasses say how to read a file's schema, row count and record batches.
    """

    suffix: str

    @classmethod
    @abstractmethod
    def file_schema(cls, path: Location) -> pa.Schema:
        """The file's Arrow schema, with its metadata, read cheaply."""

    @abstractmethod
    def _batches(self, columns: list[str]) -> Iterator[pa.RecordBatch]:
        """The file's rows, `columns` only, in record batches of about `BATCH_ROWS`."""

    @abstractmethod
    def _num_rows(self) -> int:
        """The file's row count."""

    @abstractmethod
    def column(self, name: str) -> pa.ChunkedArray:
        """One whole column of the file (a key column: small beside the images)."""

    @abstractmethod
    def batches_holding(self, columns: list[str], positions: np.ndarray) -> Iterator[tuple[int, pa.RecordBatch]]:
        """(first row, batch) over the rows, `columns` only, in order; batches holding none of
        the ascending row `positions` may be skipped unread (a Parquet file's row groups)."""

    @classmethod
    def matches(cls, path: Location) -> bool:
        return cls.claims(path, ColumnsConfig())

    @classmethod
    def claims(cls, path: Location, columns: ColumnsConfig) -> bool:
        """A file of this suffix with an image column (an unreadable one, or one lacking a column
        the user named, also matches, so the damage is reported instead of silently skipped)."""
        if not (path.is_file() and path.suffix.lower() == cls.suffix):
            return False
        try:
            return find_layout(cls.file_schema(path), columns) is not None
        except SHARD_ERRORS:
            return True

    def shard_schema(self) -> pa.Schema:
        """This shard's schema (a reader that holds its footer answers without reading again)."""
        return self.file_schema(self.shard.path)

    @cached_property
    def _layout(self) -> ColumnLayout | None:
        try:
            return find_layout(self.shard_schema(), self.shard.columns)
        except SHARD_ERRORS:
            return None

    def meta_schema(self) -> pa.Schema:
        return self._layout.meta if self._layout else pa.schema([])

    def estimate_count(self) -> int | None:
        try:
            return self._num_rows()
        except SHARD_ERRORS:
            return None

    def __iter__(self) -> Iterator[Record]:
        return guard_records(self.shard.shard_id, self._records())

    def layout(self) -> ColumnLayout:
        """The file's layout; a file without an image column is refused (ValueError)."""
        layout = find_layout(self.shard_schema(), self.shard.columns)
        if layout is None:
            raise ValueError("no column holds image bytes")
        return layout

    def index_digits(self) -> int:
        """How wide the zero-padded row index is that names rows without a key."""
        return max(MIN_INDEX_DIGITS, len(str(self._num_rows())))

    def _records(self) -> Iterator[Record]:
        layout = self.layout()
        digits = self.index_digits()
        index = 0
        for batch in self._batches(layout.columns):
            for row in batch.to_pylist():
                member = _member(row, layout, index, digits)
                yield record_or_error(self.key(member), self._record, member, row, layout)
                index += 1

    def _record(self, member: str, row: dict[str, Any], layout: ColumnLayout) -> Record:
        image = row[layout.image]
        if layout.image_is_struct:
            image = self.struct_image(image)
        if image is None and layout.status:
            failed = img2dataset.failure(self.key(member), row.get(img2dataset.STATUS_COLUMN),
                                         row.get(img2dataset.MESSAGE_COLUMN))
            if failed is not None:
                return failed
        raw_text = row[layout.text] if layout.text else None
        text = decode_text(raw_text) if isinstance(raw_text, bytes) else check_text(raw_text)
        return Sample(self.key(member), image, text, layout.meta_of(row))

    def struct_image(self, value: dict[str, Any] | None) -> bytes | None:
        """A `{bytes, path}` image's bytes, read from its path when only the path is stored."""
        if not value or value.get("bytes") is not None:
            return value.get("bytes") if value else None
        path = value.get("path")
        if not isinstance(path, str) or not path:
            return None
        found = referenced_file(Path(self.shard.path).parent, path)
        check_size(found.stat().st_size, path)
        return found.read_bytes()


def _member(row: dict[str, Any], layout: ColumnLayout, index: int, digits: int) -> str:
    """The key column's value, else the zero-padded row index (stable across reads)."""
    value = row.get(layout.key) if layout.key else None
    return str(value) if value is not None and str(value) else f"{index:0{digits}d}"
