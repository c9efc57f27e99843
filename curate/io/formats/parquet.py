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
from typing import Any, Iterator

import pyarrow as pa
import pyarrow.parquet as pq

from curate.io.formats.base import register_reader, register_writer
from curate.io.formats.columnar import BATCH_ROWS, ColumnarReader, ColumnLayout, find_layout
from curate.io.formats.naming import image_file_name, writable_member
from curate.io.formats.writing import AtomicShardWriter
from curate.io.location import Location, RemotePath, open_in_place
from curate.io.tables import table_footer, table_schema
from curate.schemas.sample import Sample

__all__ = ["ColumnLayout", "ParquetReader", "ParquetWriter", "find_layout"]

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

    def _shard_schema(self) -> pa.Schema:
        return self._footer.schema.to_arrow_schema()

    def _num_rows(self) -> int:
        return self._footer.num_rows

    def _batches(self, columns: list[str]) -> Iterator[pa.RecordBatch]:
        remote = isinstance(self.shard.path, RemotePath)  # read by ranges, row group by row group
        with open_in_place(self.shard.path, ahead=False) if remote else nullcontext(self.shard.path) as source, \
                pq.ParquetFile(source, metadata=self._footer, buffer_size=STREAM_BUFFER if remote else 0, pre_buffer=not remote) as pf:
            yield from pf.iter_batches(batch_size=BATCH_ROWS, columns=columns)


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
        self._rows: list[dict[str, Any]] = []
        self._schema: pa.Schema | None = None
        self._writer: pq.ParquetWriter | None = None

    def write(self, sample: Sample, *, extra: dict[str, Any] | None = None) -> None:
        member = writable_member(sample.key)
        image = None if sample.image is None else {
            "bytes": sample.image, "path": image_file_name(sample.key, sample.image)}
        self._rows.append({"key": member, "image": image, "caption": sample.text, **self.columns_of(sample, extra)})
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
        for declared in [*self.written_meta_schema(), *self.extra_schema]:
            fields.setdefault(declared.name, declared)
        rest = [n for n in dict.fromkeys(k for row in rows for k in row) if n not in fields]
        if rest:
            sample = pa.Table.from_pylist([{n: row.get(n) for n in rest} for row in rows])
            fields.update({f.name: f for f in sample.schema})
        schema = pa.schema(list(fields.values()))
        return schema.with_metadata({HF_METADATA_KEY: hf_features(schema, image="image")})

    def _finish(self) -> None:
        self._flush()
        if self._writer is None:  # no sample at all: still a valid, empty shard
            self._writer = pq.ParquetWriter(self.tmp, self._infer_schema([]))
        self._writer.close()

    def _release(self) -> None:
        if self._writer is not None:
            self._writer.close()
