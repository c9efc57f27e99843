"""How `filter` copies one source shard's kept pairs into the subset: the fastest way that applies.

Ways are registered by (source format, subset format) in `COPIES`, and each says whether it
can take a given shard (`supports`); `SampleCopy`, the reader's samples one by one through
the writer, takes every other case (conversions such as Parquet to WebDataset, DiffusionDB
zips, image folders, compressed tars). Every way writes the same bytes for the same input:

* `ColumnarCopy` (Parquet and Arrow sources to a Parquet subset): the kept rows are selected
  with Arrow (`io/formats/columnar_select.py`: the key column read whole, the other columns
  only for the row groups holding a kept row) and written as Arrow columns, with no Python
  object per row;
* `TarCopy` (WebDataset tars to WebDataset tars): the kept samples' members are read in place
  and every other member is skipped unread (`WebDatasetReader.select`); image and caption
  bytes go to the output untouched.

A fast way that meets a damaged source part way goes on sample by sample after the pairs it
already wrote, so what a damaged source gives (its readable pairs, then a refusal naming the
ones it lost) never depends on the way taken.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import pyarrow as pa
import pyarrow.compute as pc

from curate.io.formats.base import ShardReader
from curate.io.formats.columnar import ColumnarReader
from curate.io.formats.columnar_select import select_rows, selectable
from curate.io.formats.webdataset import WebDatasetReader
from curate.io.safety import SHARD_ERRORS
from curate.schemas.sample import Record, Sample
from curate.subsets.output import ShardRoller

Advance = Callable[[int], None]
PROGRESS_EVERY = 256  # records per progress update: one update per record would cost ~10% of the run


@dataclass
class Copied:
    """How a shard's copy went: records gone through, kept pairs written, kept keys not found."""

    read: int = 0
    written: int = 0
    missing: list[str] = field(default_factory=list)


class ShardCopy(ABC):
    """One way of writing a source shard's kept pairs (`kept`: columns `key`, `similarity`)
    through the roller, in the reader's order."""

    @classmethod
    def supports(cls, reader: ShardReader) -> bool:
        """Whether this way gives exactly what `SampleCopy` gives for this shard."""
        return True

    @abstractmethod
    def copy(self, reader: ShardReader, kept: pa.Table, *, roller: ShardRoller, advance: Advance) -> Copied:
        """Write the kept pairs; report the kept keys the source does not hold."""


class SampleCopy(ShardCopy):
    """Every record of the reader, the kept samples written one by one: works for any pair of formats."""

    def copy(self, reader: ShardReader, kept: pa.Table, *, roller: ShardRoller, advance: Advance,
             skip: int = 0) -> Copied:
        """`skip`: kept pairs already written (by a fast way that stopped part way)."""
        done = Copied()
        copy_samples(iter(reader), kept_similarities(kept), done, roller=roller, advance=advance, skip=skip)
        return done


class ColumnarCopy(ShardCopy):
    """Parquet or Arrow rows selected and written as Arrow columns."""

    @classmethod
    def supports(cls, reader: ShardReader) -> bool:
        local = isinstance(reader.shard.path, Path)  # a file at a URL is streamed by the reader
        return local and isinstance(reader, ColumnarReader) and selectable(reader)

    def copy(self, reader: ShardReader, kept: pa.Table, *, roller: ShardRoller, advance: Advance) -> Copied:
        assert isinstance(reader, ColumnarReader)
        wanted, similarity = kept.column("key").combine_chunks(), kept.column("similarity").combine_chunks()
        done, found = Copied(), []
        batches = select_rows(reader, wanted)
        while True:
            try:
                batch = next(batches, None)
                if batch is None:
                    break
                batch = roller.conformed(batch)
                sims = similarity.take(pc.index_in(batch.keys, value_set=wanted))
            except SHARD_ERRORS:  # damaged part way: the reader's own way from here on
                return SampleCopy().copy(reader, kept, roller=roller, advance=advance, skip=done.written)
            roller.write_batch(batch, sims)
            done.written += len(batch)
            found.append(batch.keys)
        done.read = reader.estimate_count() or 0
        advance(done.read)
        done.missing = _not_found(wanted, found)
        return done


class TarCopy(ShardCopy):
    """A plain tar's kept samples read in place, the rest of it skipped."""

    @classmethod
    def supports(cls, reader: ShardReader) -> bool:
        return isinstance(reader, WebDatasetReader)

    def copy(self, reader: ShardReader, kept: pa.Table, *, roller: ShardRoller, advance: Advance) -> Copied:
        assert isinstance(reader, WebDatasetReader)
        keys = kept_similarities(kept)
        records = reader.select(keys)
        if records is None:  # compressed, pax headers, damaged: `tarfile` reads it
            return SampleCopy().copy(reader, kept, roller=roller, advance=advance)
        done = Copied()
        try:
            copy_samples(records, keys, done, roller=roller, advance=advance)
        except SHARD_ERRORS:
            return SampleCopy().copy(reader, kept, roller=roller, advance=advance, skip=done.written)
        return done


# (source format, subset format) -> the way to copy; any pair not here is copied sample by sample.
COPIES: dict[tuple[str, str], type[ShardCopy]] = {
    ("parquet", "parquet"): ColumnarCopy,
    ("arrow", "parquet"): ColumnarCopy,
    ("webdataset", "webdataset"): TarCopy,
}


def copy_for(reader: ShardReader, subset_format: str) -> ShardCopy:
    """The registered way for this pair of formats if it supports the shard, else `SampleCopy`."""
    way = COPIES.get((reader.format_name, subset_format), SampleCopy)
    return way() if way.supports(reader) else SampleCopy()


def kept_similarities(kept: pa.Table) -> dict[str, float]:
    """Kept key -> similarity, for the ways that go sample by sample."""
    return dict(zip(kept.column("key").to_pylist(), kept.column("similarity").to_pylist()))


def copy_samples(records: Iterable[Record], keys: dict[str, float], done: Copied, *, roller: ShardRoller,
                 advance: Advance, skip: int = 0) -> None:
    """Write the kept samples among `records`, in order, stopping once every kept key was found;
    `done` counts as it goes (so a caller still knows what was written if a record raises)."""
    remaining = dict(keys)
    records = iter(records)
    try:
        for record in records:
            done.read += 1
            if done.read % PROGRESS_EVERY == 0:
                advance(PROGRESS_EVERY)
            if isinstance(record, Sample) and record.key in remaining:
                similarity = remaining.pop(record.key)
                if skip:  # written before, by the way that stopped part way
                    skip -= 1
                else:
                    roller.write(record, similarity)
                done.written += 1
            if not remaining:
                break
    finally:
        getattr(records, "close", lambda: None)()
        advance(done.read % PROGRESS_EVERY)
    done.missing = sorted(remaining)


def _not_found(wanted: pa.Array, found: list[pa.Array]) -> list[str]:
    """The wanted keys not among the keys written."""
    written = pa.concat_arrays(found) if found else pa.array([], pa.string())
    return sorted(wanted.filter(pc.invert(pc.is_in(wanted, value_set=written))).to_pylist())
