"""Rows of a column-format shard selected by key, as Arrow columns: no Python object per row.

What a `ColumnarReader` yields sample by sample, `select_rows` yields as `SampleBatch`es
holding only the rows whose key is wanted, in file order: the same keys (`<shard-id>/<member>`,
the member being the key column's value or the zero-padded row index), the same image bytes
and captions, the same meta. Rows the reader would have turned into errors are left out as
it would: a key seen before in the file (the first row holding it is the sample), an unsafe
member name, an img2dataset row whose download failed, a `datasets` image stored as a path
that is refused. So `filter` copies a Parquet source into a Parquet subset at the speed of
Arrow (`subsets/fast_copy.py`). Only the key column is read whole; the other columns are read
for the row groups that hold a wanted row.

A read that fails part way ends the stream, as it ends the reader's; the caller then goes on
sample by sample from the rows already handed over.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from curate.io.formats import img2dataset
from curate.io.formats.columnar import ColumnarReader, ColumnLayout
from curate.io.safety import SHARD_ERRORS, MemberProblem, unsafe_names
from curate.schemas.sample_batch import SampleBatch

_TEXT = (pa.types.is_string, pa.types.is_large_string)
_BYTES = (pa.types.is_binary, pa.types.is_large_binary)


def selectable(reader: ColumnarReader) -> bool:
    """Whether `select_rows` names and reads this shard's rows as the reader does: a key column
    of text or integers (their text is Python's), a caption column of text or bytes."""
    try:
        layout = reader.layout()
        schema = reader.shard_schema()
    except SHARD_ERRORS:
        return False
    key = layout.key is None or _is_any(schema.field(layout.key).type, _TEXT + (pa.types.is_integer,))
    text = layout.text is None or _is_any(schema.field(layout.text).type, _TEXT + _BYTES)
    return key and text


def _is_any(type_: pa.DataType, kinds: tuple) -> bool:
    return any(kind(type_) for kind in kinds)


def select_rows(reader: ColumnarReader, wanted: pa.Array) -> Iterator[SampleBatch]:
    """The rows of `reader`'s shard whose key is in `wanted` (string run keys), in file order."""
    layout = reader.layout()
    keys = run_keys(reader, layout)
    positions = first_rows(keys, wanted)
    positions = positions[_safe(keys.take(pa.array(positions, pa.int64())), reader.shard.shard_id)]
    if not len(positions):
        return
    for start, batch in reader.batches_holding(layout.columns, positions):
        lo, hi = np.searchsorted(positions, [start, start + batch.num_rows])
        if lo == hi:
            continue
        rows = batch.take(pa.array(positions[lo:hi] - start, pa.int64()))
        selected, complete = _samples(reader, layout, rows, keys.take(pa.array(positions[lo:hi], pa.int64())))
        if len(selected):
            yield selected
        if not complete:  # a stored image path could not be read: the reader's stream ends there
            return


def run_keys(reader: ColumnarReader, layout: ColumnLayout) -> pa.Array:
    """Every row's key, `<shard-id>/<member>`, as the reader names it."""
    rows = reader.estimate_count()
    if rows is None:
        raise ValueError("the file's row count cannot be read")
    index = pc.utf8_lpad(pc.cast(pa.array(np.arange(rows)), pa.string()), reader.index_digits(), "0")
    members = index
    if layout.key is not None:
        given = pc.cast(reader.column(layout.key), pa.string()).combine_chunks()
        present = pc.and_kleene(pc.is_valid(given), pc.greater(pc.utf8_length(given), 0))
        members = pc.if_else(pc.fill_null(present, False), given, index)
    return pc.binary_join_element_wise(pa.scalar(reader.shard.shard_id), members, "/")


def first_rows(keys: pa.Array, wanted: pa.Array) -> np.ndarray:
    """Ascending positions of the first row holding each wanted key (later rows with the same
    key are the reader's duplicate-key errors)."""
    found = pc.index_in(keys, value_set=wanted.cast(pa.string()))
    matched = np.flatnonzero(pc.is_valid(found).to_numpy(zero_copy_only=False))
    ids = found.take(pa.array(matched, pa.int64())).to_numpy(zero_copy_only=False)
    _, first = np.unique(ids, return_index=True)
    return np.sort(matched[first])


def _safe(keys: pa.Array, shard_id: str) -> np.ndarray:
    """Which keys have a member name the reader accepts."""
    return ~unsafe_names(pc.utf8_slice_codeunits(keys, len(shard_id) + 1))


def _samples(reader: ColumnarReader, layout: ColumnLayout, rows: pa.RecordBatch,
             keys: pa.Array) -> tuple[SampleBatch, bool]:
    """The selected rows as a batch, less the ones the reader makes errors of; False when the
    rows end early because the reader's stream would have ended there."""
    images, usable, complete = _images(reader, layout, rows)
    if layout.status:
        usable &= ~_download_failed(rows, images)
    texts = rows.column(layout.text).cast(pa.string()) if layout.text else pa.nulls(rows.num_rows, pa.string())
    meta = pa.table([rows.column(source) for source in layout.meta_sources], schema=layout.meta) \
        if layout.meta_sources else pa.table({"_": pa.nulls(rows.num_rows)}).drop_columns(["_"])
    batch = SampleBatch(keys, images, texts, meta)
    if usable.all():
        return batch, complete
    keep = pa.array(np.flatnonzero(usable), pa.int64())
    return SampleBatch(keys.take(keep), images.take(keep), texts.take(keep), meta.take(keep)), complete


def _images(reader: ColumnarReader, layout: ColumnLayout, rows: pa.RecordBatch) -> tuple[pa.Array, np.ndarray, bool]:
    """The image bytes (binary), which rows are usable, and whether all rows were reached: a
    `datasets` image stored as a path is read from it, as the reader reads it."""
    column = rows.column(layout.image)
    usable = np.ones(rows.num_rows, dtype=bool)
    if not layout.image_is_struct:
        return column.cast(pa.binary()), usable, True
    images = pc.struct_field(column, "bytes").cast(pa.binary())
    by_path = pc.and_(pc.is_valid(column), pc.is_null(images)).to_numpy(zero_copy_only=False)
    if not by_path.any():
        return images, usable, True
    values = images.to_pylist()
    for i in np.flatnonzero(by_path):
        try:
            values[i] = reader.struct_image(column[int(i)].as_py())
        except MemberProblem:
            usable[i] = False
        except SHARD_ERRORS:
            usable[i:] = False
            return pa.array(values, pa.binary()), usable, False
    return pa.array(values, pa.binary()), usable, True


def _download_failed(rows: pa.RecordBatch, images: pa.Array) -> np.ndarray:
    """img2dataset rows without image bytes whose status says the download failed."""
    status = rows.column(img2dataset.STATUS_COLUMN).cast(pa.string())
    failed = pc.and_(pc.is_null(images), pc.not_equal(status, img2dataset.SUCCESS))
    return pc.fill_null(failed, False).to_numpy(zero_copy_only=False)
