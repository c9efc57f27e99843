"""Parquet shards holding image bytes: img2dataset's parquet output and `datasets` images.

Which columns hold the image, the caption, the key and the meta is the column formats'
shared rule (`io/formats/columnar.py`). Files are streamed by small record batches and only
the needed columns are read; a file at a URL by ranged reads, row group by row group.

The writer writes what `datasets.load_dataset("parquet", ...)` reads as an `Image()`
feature: `key`, `image` as the struct `{bytes, path}`, `caption`, the meta and extra
columns, and the `huggingface` schema metadata naming every column's feature.
"""

from __future__ import annotations

import json
from contextlib import nullcontext
from functools import cached_property
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from curate.io.formats.base import register_reader, register_writer
from curate.io.formats.columnar import BATCH_ROWS, ColumnarReader, ColumnLayout, find_layout
from curate.io.formats.meta import renamed_columns
from curate.io.formats.naming import image_file_name, image_file_names, writable_member, writable_members
from curate.io.formats.writing import WRITER_COLUMNS, AtomicShardWriter
from curate.io.location import Location, RemotePath, open_in_place
from curate.io.tables import table_footer, table_schema
from curate.schemas.sample import Sample
from curate.schemas.sample_batch import SampleBatch

__all__ = ["ColumnLayout", "ParquetReader", "ParquetWriter", "find_layout"]

SELECT_BYTES = 64 * 1024 * 1024  # one batch of selected rows: bounded memory, few Python calls
SELECT_ROWS = 65536
STREAM_BUFFER = 2**20  # a remote column chunk is read page by page through a buffer this size
# (and not pre-buffered: pyarrow would fetch every row group a batch iterator may visit, the whole file)

IMAGE_TYPE = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
HF_METADATA_KEY = b"huggingface"
# Arrow type names `datasets` spells differently in its `Value` features.
_HF_DTYPES = {"float": "float32", "double": "float64", "halffloat": "float16"}


@register_reader
class ParquetReader(ColumnarReader):
    """A Parquet file with an image column, read by row groups' record batches."""

    format_name = "parquet"
    suffix = ".parquet"
    streams = True

    @classmethod
    def file_schema(cls, path: Location) -> pa.Schema:
        return table_schema(path)

    @cached_property
    def _footer(self) -> pq.FileMetaData:
        """Read once per shard: at a URL each read is a request."""
        return table_footer(self.shard.path)

    def shard_schema(self) -> pa.Schema:
        return self._footer.schema.to_arrow_schema()

    def _num_rows(self) -> int:
        return self._footer.num_rows

    def _batches(self, columns: list[str]) -> Iterator[pa.RecordBatch]:
        remote = isinstance(self.shard.path, RemotePath)  # read by ranges, row group by row group
        with open_in_place(self.shard.path, ahead=False) if remote else nullcontext(self.shard.path) as source, \
                pq.ParquetFile(source, metadata=self._footer, buffer_size=STREAM_BUFFER if remote else 0, pre_buffer=not remote) as pf:
            yield from pf.iter_batches(batch_size=BATCH_ROWS, columns=columns)

    def column(self, name: str) -> pa.ChunkedArray:
        with pq.ParquetFile(self.shard.path, metadata=self._footer) as pf:
            return pf.read(columns=[name]).column(0)

    def batches_holding(self, columns: list[str], positions: np.ndarray) -> Iterator[tuple[int, pa.RecordBatch]]:
        """Only the row groups holding a wanted row are read, in batches of about `SELECT_BYTES`."""
        with pq.ParquetFile(self.shard.path, metadata=self._footer) as pf:
            sizes = [pf.metadata.row_group(g).num_rows for g in range(pf.metadata.num_row_groups)]
            starts = np.cumsum([0, *sizes])
            rows = _rows_per_batch(pf.metadata, columns)
            for group, (start, end) in enumerate(zip(starts[:-1], starts[1:])):
                if np.searchsorted(positions, start) == np.searchsorted(positions, end):
                    continue  # no wanted row in this row group: never read
                for batch in pf.iter_batches(batch_size=rows, row_groups=[group], columns=columns):
                    yield int(start), batch
                    start += batch.num_rows


def _rows_per_batch(metadata: pq.FileMetaData, columns: list[str]) -> int:
    """Rows per batch so that one batch of `columns` holds about `SELECT_BYTES` (memory stays flat
    whatever the row groups' size)."""
    wanted = set(columns)
    total = sum(group.column(c).total_uncompressed_size
                for group in map(metadata.row_group, range(metadata.num_row_groups))
                for c in range(group.num_columns) if group.column(c).path_in_schema.split(".")[0] in wanted)
    per_row = max(1, total // max(1, metadata.num_rows))
    return int(min(SELECT_ROWS, max(BATCH_ROWS, SELECT_BYTES // per_row)))


def hf_features(schema: pa.Schema, *, image: str) -> bytes:
    """The `huggingface` schema metadata: `image` an `Image()`, every other column a `Value`."""
    features = {
        f.name: {"_type": "Image"} if f.name == image else {"dtype": _HF_DTYPES.get(str(f.type), str(f.type)),
                                                             "_type": "Value"}
        for f in schema
    }
    return json.dumps({"info": {"features": features}}).encode()


@register_writer
class ParquetWriter(AtomicShardWriter):
    """Writes `key`, `image` ({bytes, path}, a `datasets` Image), `caption`, meta, extra.

    The schema is fixed at the first flush: declared meta/extra schemas first, then any
    other meta or extra names present in that first batch, typed by inference. A later
    sample bringing a column the schema lacks is refused rather than silently dropped.
    Row groups hold `batch_rows` rows, whether the rows came one sample at a time (`write`)
    or as Arrow columns (`write_batch`): the same rows give the same file, byte for byte.
    """

    format_name = "parquet"
    suffix = ".parquet"
    BASE_FIELDS = (("key", pa.string()), ("image", IMAGE_TYPE), ("caption", pa.string()))

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
        self._rows: list[dict[str, Any]] = []  # samples written one by one, not yet a table
        self._tables: list[pa.Table] = []  # rows waiting for their row group, in order
        self._buffered = 0
        self._schema: pa.Schema | None = None
        self._writer: pq.ParquetWriter | None = None

    def write(self, sample: Sample, *, extra: dict[str, Any] | None = None) -> None:
        member = writable_member(sample.key)
        image = None if sample.image is None else {
            "bytes": sample.image, "path": image_file_name(sample.key, sample.image)}
        self._rows.append({"key": member, "image": image, "caption": sample.text, **self.columns_of(sample, extra)})
        self._added(1)

    def write_batch(self, batch: SampleBatch, *, extra: pa.Table | None = None) -> None:
        """Append the rows `write` would make of each sample of `batch`, from its Arrow columns."""
        extra = extra if extra is not None else pa.table({})
        members = writable_members(batch.keys)
        images = batch.images.cast(pa.binary())
        image = pa.StructArray.from_arrays([images, image_file_names(members, images)], fields=list(IMAGE_TYPE),
                                           mask=pc.is_null(images))
        names = renamed_columns(batch.meta.column_names, WRITER_COLUMNS | set(extra.column_names))
        columns = {"key": members, "image": image, "caption": batch.texts,
                   **{names[n]: batch.meta.column(n) for n in batch.meta.column_names},
                   **{n: extra.column(n) for n in extra.column_names}}
        self._settle_rows()  # rows written one by one before these keep their place
        if self._schema is None:
            self._start(self._with_declared([pa.field(n, c.type) for n, c in columns.items()]))
        self._check_known(columns)
        self._tables.append(pa.table([_as(columns.get(f.name), f, len(batch)) for f in self._schema],
                                     schema=self._schema))
        self._added(len(batch))

    def _added(self, rows: int) -> None:
        self.count += rows
        self._buffered += rows
        if self._buffered >= self.batch_rows:
            self._flush()

    def _settle_rows(self) -> None:
        """Turn the rows written one by one into a table (fixing the schema on the first)."""
        if not self._rows:
            return
        if self._schema is None:
            self._start(self._infer_schema(self._rows))
        self._check_known(set().union(*self._rows))
        self._tables.append(pa.Table.from_pylist(self._rows, schema=self._schema))
        self._rows = []

    def _check_known(self, names: Iterable[str]) -> None:
        unknown = set(names) - set(self._schema.names)  # type: ignore[union-attr]
        if unknown:
            raise ValueError(f"columns {sorted(unknown)} were not in the shard's first batch")

    def _flush(self, *, final: bool = False) -> None:
        """Write every full row group buffered (and, at the end, the last partial one)."""
        self._settle_rows()
        whole = self._buffered if final else self._buffered - self._buffered % self.batch_rows
        if not whole:
            return
        buffered = pa.concat_tables(self._tables)
        self._write_groups(buffered.slice(0, whole))
        rest = buffered.slice(whole)
        self._tables, self._buffered = ([rest] if rest.num_rows else []), self._buffered - whole

    def _write_groups(self, rows: pa.Table) -> None:
        """`rows` as row groups of `batch_rows`: in one call when no column is a dictionary (the
        same bytes as group by group, in half the time), else group by group, each group's
        dictionaries holding only the values it uses."""
        if not any(pa.types.is_dictionary(field.type) for field in rows.schema):
            self._writer.write_table(rows.combine_chunks(), row_group_size=self.batch_rows)  # type: ignore[union-attr]
            return
        for start in range(0, rows.num_rows, self.batch_rows):
            self._writer.write_table(_compact(rows.slice(start, self.batch_rows)))  # type: ignore[union-attr]

    def _start(self, schema: pa.Schema) -> None:
        self._schema = schema
        self._writer = pq.ParquetWriter(self.tmp, schema)

    def _infer_schema(self, rows: list[dict[str, Any]]) -> pa.Schema:
        known = {name for name, _ in self.BASE_FIELDS} | set(self.written_meta_schema().names) | set(
            self.extra_schema.names)
        rest = [n for n in dict.fromkeys(k for row in rows for k in row) if n not in known]
        inferred = pa.Table.from_pylist([{n: row.get(n) for n in rest} for row in rows]).schema if rest else []
        return self._with_declared(list(inferred))

    def _with_declared(self, rest: list[pa.Field]) -> pa.Schema:
        """Base fields, declared meta and extra fields, then the `rest` not declared."""
        fields = {name: pa.field(name, type_) for name, type_ in self.BASE_FIELDS}
        for declared in [*self.written_meta_schema(), *self.extra_schema, *rest]:
            fields.setdefault(declared.name, declared)
        schema = pa.schema(list(fields.values()))
        return schema.with_metadata({HF_METADATA_KEY: hf_features(schema, image="image")})

    def _finish(self) -> None:
        self._flush(final=True)
        if self._writer is None:  # no sample at all: still a valid, empty shard
            self._start(self._infer_schema([]))
        self._writer.close()  # type: ignore[union-attr]

    def _release(self) -> None:
        if self._writer is not None:
            self._writer.close()


def _compact(rows: pa.Table) -> pa.Table:
    """One row group's rows in one chunk, each dictionary column holding only the values it uses,
    in order of first use: rows taken from a source keep its whole dictionary, rows built one
    by one do not, and both must give the same file."""
    rows = rows.combine_chunks()
    for i, field in enumerate(rows.schema):
        if pa.types.is_dictionary(field.type):
            values = rows.column(i).cast(field.type.value_type).combine_chunks()
            rows = rows.set_column(i, field, values.dictionary_encode().cast(field.type))
    return rows


def _as(values: pa.Array | pa.ChunkedArray | None, field: pa.Field, length: int) -> pa.Array | pa.ChunkedArray:
    """A column of `field`'s type (nulls where the batch lacks it, as `from_pylist` gives)."""
    if values is None:
        return pa.nulls(length, type=field.type)
    return values if values.type == field.type else values.cast(field.type)
