"""The Parquet writer's row groups: `batch_rows` rows each, whether the rows came one sample
at a time or as Arrow columns, and the same bytes as writing each row group on its own (the
writer writes every full row group of a large batch in one call)."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from curate.io.formats.parquet import ParquetWriter
from curate.schemas.sample import Sample
from curate.schemas.sample_batch import SampleBatch
from tests.fixtures import image_bytes

ROWS, GROUP = 23, 4
META = pa.schema([("width", pa.int64()), ("label", pa.dictionary(pa.int32(), pa.string()))])


def samples() -> list[Sample]:
    return [Sample(f"s/{i:03d}", image_bytes(i % 3), f"caption {i}", {"width": i, "label": f"l{i % 5}"})
            for i in range(ROWS)]


def as_batch(rows: list[Sample]) -> SampleBatch:
    columns = {"width": pa.array([s.meta["width"] for s in rows])}
    if "label" in rows[0].meta:
        columns["label"] = pa.array([s.meta["label"] for s in rows]).dictionary_encode()
    meta = pa.table(columns)
    return SampleBatch(pa.array([s.key for s in rows]), pa.array([s.image for s in rows], pa.binary()),
                       pa.array([s.text for s in rows]), meta)


def group_by_group(source: Path, out: Path) -> bytes:
    """The file's rows rewritten one row group per `write_table` call, dictionaries compacted."""
    table = pq.read_table(source)
    with pq.ParquetWriter(out, table.schema) as writer:
        for start in range(0, table.num_rows, GROUP):
            group = table.slice(start, GROUP).combine_chunks()
            label = group.schema.get_field_index("label")
            if label >= 0:
                values = group.column(label).cast(pa.string()).combine_chunks().dictionary_encode()
                group = group.set_column(label, group.schema.field(label), values)
            writer.write_table(group)
    return out.read_bytes()


@pytest.mark.parametrize("meta", [None, META], ids=["plain", "dictionary"])
def test_one_batch_and_sample_by_sample_give_the_bytes_of_group_by_group(tmp_path, meta):
    rows = samples()
    if meta is None:
        rows = [Sample(s.key, s.image, s.text, {"width": s.meta["width"]}) for s in rows]
    with ParquetWriter(tmp_path / "one.parquet", meta_schema=meta, batch_rows=GROUP) as writer:
        writer.write_batch(as_batch(rows))
    with ParquetWriter(tmp_path / "each.parquet", meta_schema=meta, batch_rows=GROUP) as writer:
        for sample in rows:
            writer.write(sample)

    one, each = (tmp_path / "one.parquet").read_bytes(), (tmp_path / "each.parquet").read_bytes()
    assert one == each
    assert one == group_by_group(tmp_path / "one.parquet", tmp_path / "groups.parquet")
    metadata = pq.read_metadata(tmp_path / "one.parquet")
    assert [metadata.row_group(g).num_rows for g in range(metadata.num_row_groups)] == [4, 4, 4, 4, 4, 3]
