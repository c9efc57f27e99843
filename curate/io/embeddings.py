"""Reading a run's embeddings files: their metadata, and their vectors a batch at a time.

`train` and `score` both stream `embeddings/<shard-id>.parquet`; this module is the one place
that knows how a `fixed_size_list<float16>` column becomes a numpy matrix.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from curate.errors import CurateError
from curate.io.location import Location, RemotePath, location
from curate.io.tables import table_rows, table_schema
from curate.schemas.layout import RunLayout
from curate.schemas.tables import (
    EmbeddingsInfo,
    EncoderInfo,
    Table,
    read_embeddings_info,
)

READ_ROWS = 16384  # rows per streamed batch: a few MB of float16 vectors


def vectors_to_arrow(vectors: np.ndarray) -> pa.Array:
    """(N, D) floats -> fixed_size_list<float16>[D]."""
    flat = pa.array(np.ascontiguousarray(vectors, dtype=np.float16).reshape(-1))
    return pa.FixedSizeListArray.from_arrays(flat, vectors.shape[1])


def check_encoders(path: Location, info: EmbeddingsInfo, want: tuple[EncoderInfo, EncoderInfo], *, remedy: str) -> None:
    """Refuse an embeddings file whose vectors come from other encoders (or settings) than `want`."""
    for side, got, wanted in (("image", info.image_encoder, want[0]), ("text", info.text_encoder, want[1])):
        difference = got.difference(wanted)
        if difference:
            raise CurateError(f"{path} was embedded with the {side} encoder {difference}; {remedy}")


def embeddings_files(run: Location) -> list[Location]:
    """The finished embeddings files of a run (a folder or a URL), refusing a run that has none."""
    run = location(run)
    if not run.is_dir():
        raise CurateError(f"Run directory {run} does not exist.")
    files = RunLayout(run).shard_files(Table.EMBEDDINGS)
    if not files:
        raise CurateError(f"{run} has no embeddings ({run / 'embeddings'} is empty); run `curate embed` first.")
    return files


def embeddings_info(path: Location, schema: pa.Schema | None = None) -> EmbeddingsInfo:
    """The encoder metadata of one embeddings file (from `schema` if already read), or one line
    saying it is not one."""
    try:
        return read_embeddings_info(schema if schema is not None else table_schema(path))
    except (KeyError, TypeError, ValueError, pa.ArrowInvalid, OSError) as exc:
        raise CurateError(f"{path} is not a curate embeddings file ({type(exc).__name__}).") from None


def vector_dims(source: Location | pa.Schema) -> tuple[int, int]:
    """(image dim, text dim) as stored in a file's schema, whatever its metadata claims."""
    schema = source if isinstance(source, pa.Schema) else table_schema(source)
    return schema.field("image_emb").type.list_size, schema.field("text_emb").type.list_size


def vectors(column: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """fixed_size_list<float16>[D] -> (N, D) float16 (respects slicing offsets)."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    dim = column.type.list_size
    return column.flatten().to_numpy(zero_copy_only=False).reshape(-1, dim)


def iter_batches(path: Path, *, columns: Sequence[str] | None = None, rows: int = READ_ROWS) -> Iterator[pa.RecordBatch]:
    """Stream a file in record batches so memory stays bounded by one batch."""
    with pq.ParquetFile(path) as parquet:
        yield from parquet.iter_batches(batch_size=rows, columns=list(columns) if columns else None)


@contextmanager
def parquet_file(path: Location) -> Iterator[pq.ParquetFile]:
    """A Parquet file opened for reading, here or at a URL."""
    if isinstance(path, RemotePath):
        with path.open("rb") as handle, pq.ParquetFile(handle) as parquet:
            yield parquet
    else:
        with pq.ParquetFile(path) as parquet:
            yield parquet


def key_column(path: Location) -> list[str]:
    """Every key of a file, in row order (the key column alone is read)."""
    with parquet_file(path) as parquet:
        return parquet.read(columns=["key"]).column("key").to_pylist()


def take_rows(path: Location, rows: np.ndarray, columns: Sequence[str]) -> pa.Table:
    """The given rows of a file (row numbers), in that order, reading only the row groups that
    hold them: a sample of a large run costs its rows' groups, not a full scan."""
    rows = np.asarray(rows, dtype=np.int64)
    with parquet_file(path) as parquet:
        sizes = np.array([parquet.metadata.row_group(i).num_rows for i in range(parquet.metadata.num_row_groups)],
                         dtype=np.int64)
        starts = np.concatenate([[0], np.cumsum(sizes)])
        group_of = np.searchsorted(starts, rows, side="right") - 1
        groups = np.unique(group_of)
        table = parquet.read_row_groups(groups.tolist(), columns=list(columns))
    first_row = np.concatenate([[0], np.cumsum(sizes[groups])])  # where each read group starts in `table`
    local = first_row[np.searchsorted(groups, group_of)] + rows - starts[group_of]
    return table.take(pa.array(local))


def row_count(path: Location) -> int:
    """Rows of a Parquet file, from its footer alone."""
    return table_rows(path)


def read_pairs(run: Path) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Every key with its image and text vectors (float32), whole: for evaluations of small runs."""
    keys: list[str] = []
    image: list[np.ndarray] = []
    text: list[np.ndarray] = []
    for path in embeddings_files(run):
        table = pq.read_table(path, columns=["key", "image_emb", "text_emb"])
        keys += table.column("key").to_pylist()
        image.append(vectors(table.column("image_emb")))
        text.append(vectors(table.column("text_emb")))
    return keys, np.concatenate(image).astype(np.float32), np.concatenate(text).astype(np.float32)


def captions_of(run: Path, keys: list[str], shards: list[str]) -> dict[str, str | None]:
    """key -> caption, reading only the given keys of each named shard's embeddings file."""
    by_shard: dict[str, list[str]] = {}
    for key, shard in zip(keys, shards):
        by_shard.setdefault(shard, []).append(key)
    found: dict[str, str | None] = {}
    layout = RunLayout(run)
    for shard, wanted in by_shard.items():
        table = pq.read_table(layout.embeddings(shard), columns=["key", "text"], filters=[("key", "in", wanted)])
        found.update(zip(table.column("key").to_pylist(), table.column("text").to_pylist()))
    return found
