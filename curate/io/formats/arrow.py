"""Arrow files holding image rows: what `datasets`' `save_to_disk` writes.

A saved dataset is a folder of `data-NNNNN-of-NNNNN.arrow` files (Arrow IPC streams) beside
`dataset_info.json` and `state.json`; a `DatasetDict` saves one such folder per split. Each
`.arrow` file with an image column is a shard; the columns follow the rule the column
formats share (`io/formats/columnar.py`), so a `datasets` `Image()` column, stored as
bytes or as paths, and the `--image-column`/`--text-column`/`--key-column` choices work as
for Parquet. The file is memory-mapped and read one record batch at a time.
"""

from __future__ import annotations

from typing import Any, Iterator, Union

import numpy as np
import pyarrow as pa

from curate.io.formats.base import register_reader
from curate.io.formats.columnar import ColumnarReader
from curate.io.location import Location, RemotePath

Reader = Union[pa.ipc.RecordBatchStreamReader, pa.ipc.RecordBatchFileReader]


def _open(path: Location) -> Reader:
    """An IPC stream (`datasets`' own) or an IPC file, over a memory map of a local file."""
    return _reader(pa.memory_map(str(path)))


def _reader(source: Any) -> Reader:
    try:
        return pa.ipc.open_stream(source)
    except pa.ArrowInvalid:
        source.seek(0)
        return pa.ipc.open_file(source)


def _batches_of(reader: Reader) -> Iterator[pa.RecordBatch]:
    if isinstance(reader, pa.ipc.RecordBatchFileReader):
        yield from (reader.get_batch(i) for i in range(reader.num_record_batches))
    else:
        yield from reader


@register_reader
class ArrowReader(ColumnarReader):
    """An Arrow IPC file or stream with an image column (a `save_to_disk` data file)."""

    format_name = "arrow"
    suffix = ".arrow"

    @classmethod
    def file_schema(cls, path: Location) -> pa.Schema:
        if isinstance(path, RemotePath):  # the schema is the stream's first message
            with path.open("rb") as handle:
                return _reader(handle).schema
        return _open(path).schema

    def _num_rows(self) -> int:
        return sum(batch.num_rows for batch in _batches_of(_open(self.shard.path)))

    def _batches(self, columns: list[str]) -> Iterator[pa.RecordBatch]:
        for batch in _batches_of(_open(self.shard.path)):
            yield batch.select(columns)

    def column(self, name: str) -> pa.ChunkedArray:
        return pa.chunked_array([b.column(name) for b in _batches_of(_open(self.shard.path))],
                                type=self.shard_schema().field(name).type)

    def batches_holding(self, columns: list[str], positions: np.ndarray) -> Iterator[tuple[int, pa.RecordBatch]]:
        """Every record batch (memory-mapped: one holding no wanted row costs nothing)."""
        start = 0
        for batch in self._batches(columns):
            yield start, batch
            start += batch.num_rows
