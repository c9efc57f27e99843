"""Item 3: file names are data. A shard named `0*.tar` is one shard, not a glob over its neighbours."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from curate.schemas.manifest import read_manifest
from tests.hostile.conftest import GLOB_SHARD, invoke


def file_rows(layout, table: str) -> dict[str, int]:
    return {p.stem: pq.read_metadata(p).num_rows for p in layout.shard_files(table)}


def test_sql_counts_each_file_once(hostile_run):
    rows = file_rows(hostile_run, "scores")
    assert GLOB_SHARD.removesuffix(".tar") in rows and sum(rows.values()) == 8
    answer = json.loads(invoke("sql", hostile_run.root, "SELECT count(*) AS n FROM scores", "--format", "json").stdout)
    assert answer == [{"n": 8}]


def test_embeddings_view_counts_each_file_once(tmp_path):
    """The issue's case: `0*.parquet` beside `00042.parquet` in embeddings/ (73 rows, not 79)."""
    folder = tmp_path / "run" / "embeddings"
    folder.mkdir(parents=True)
    for name, rows in (("00042", 67), ("0*", 6), ("0[1]", 3)):
        vectors = pa.FixedSizeListArray.from_arrays(pa.array(np.zeros(rows * 4, dtype=np.float16)), 4)
        pq.write_table(pa.table({"key": [f"{name}/{i}" for i in range(rows)], "text": ["t"] * rows,
                                 "image_emb": vectors, "text_emb": vectors}), folder / f"{name}.parquet")
    result = invoke("sql", tmp_path / "run", "SELECT count(*) AS n FROM embeddings", "--format", "json")
    assert json.loads(result.stdout) == [{"n": 76}]


def test_filter_manifest_equals_what_was_written(hostile_run, tmp_path):
    out = tmp_path / "subset"
    result = invoke("filter", hostile_run.root, "--out", out, "-q")
    assert result.exit_code == 0, result.output
    manifest = read_manifest(out)
    written = sum(pq.read_metadata(out / o.path).num_rows for o in manifest.outputs)
    assert manifest.counts.scored == manifest.counts.kept == written == 8
    assert {i.shard_id: i.rows for i in manifest.inputs} == file_rows(hostile_run, "scores")


def test_stats_count_each_file_once(hostile_run):
    result = invoke("stats", hostile_run.root, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["count"] == 8
