"""Streaming, atomic Parquet output for the run's tables (embeddings, errors, scores).

Rows are written a row group at a time to a temporary file that is renamed when the shard
is complete, so memory stays bounded by one batch and a killed run leaves no partial file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from curate.io.atomic import PublishOnSuccess, publish, staging_path
from curate.io.location import Location, RemotePath


def table_footer(path: Location) -> pq.FileMetaData:
    """A Parquet file's footer (schema with its metadata, row count), for a local file or one at
    a URL: one read, so a caller needing both asks once."""
    if isinstance(path, RemotePath):
        with path.open("rb") as handle:
            return pq.read_metadata(handle)
    return pq.read_metadata(path)


def table_schema(path: Location) -> pa.Schema:
    """A Parquet file's Arrow schema (with its key-value metadata) from its footer alone."""
    return table_footer(path).schema.to_arrow_schema()


def read_table(path: Location) -> pa.Table:
    """A whole Parquet file (a small one: a scores file), local or at a URL."""
    if isinstance(path, RemotePath):
        with path.open("rb") as handle:
            return pq.read_table(handle)
    return pq.read_table(path)


def table_rows(path: Location) -> int:
    """A Parquet file's row count from its footer alone."""
    return table_footer(path).num_rows


class ParquetTableWriter(PublishOnSuccess):
    """Append record batches to `final` under a temporary name; `close()` publishes it."""

    def __init__(self, final: Location, schema: pa.Schema) -> None:
        self.final = final if isinstance(final, RemotePath) else Path(final)
        self.schema = schema
        self.tmp = staging_path(self.final)
        self._writer = pq.ParquetWriter(self.tmp, schema, compression="zstd")
        self.rows = 0

    def write_rows(self, columns: dict[str, list[Any] | pa.Array]) -> None:
        """Write one row group from column lists (missing meta columns become nulls)."""
        length = len(next(iter(columns.values()))) if columns else 0
        if length == 0:
            return
        arrays = [self._column(f, columns.get(f.name), length) for f in self.schema]
        self._writer.write_table(pa.Table.from_arrays(arrays, schema=self.schema))
        self.rows += length

    @staticmethod
    def _column(field: pa.Field, values: Any, length: int) -> pa.Array:
        if values is None:
            return pa.nulls(length, type=field.type)
        if isinstance(values, (pa.Array, pa.ChunkedArray)):
            return values.cast(field.type)
        try:
            return pa.array(values, type=field.type)
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
            return pa.array([_coerce(v, field.type) for v in values], type=field.type)

    def close(self) -> None:
        """Finish the file and publish it (an empty table is still a valid file)."""
        self._writer.close()
        publish(self.tmp, self.final)

    def abort(self) -> None:
        """Drop the partial file."""
        try:
            self._writer.close()
        finally:
            self.tmp.unlink(missing_ok=True)


def _coerce(value: Any, dtype: pa.DataType) -> Any:
    """One value to `dtype`, or null when it does not fit (a meta field of the wrong type)."""
    try:
        return pa.scalar(value, type=dtype).as_py()
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError, TypeError, ValueError):
        return str(value) if pa.types.is_string(dtype) else None
