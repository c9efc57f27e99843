"""Scores files written to the contract without `curate score`, so `filter` is tested alone.

`scores/<shard-id>.parquet` gets key, text, a deterministic pseudo-similarity and the meta
columns, with `ScoresInfo` pointing back at the source shard, exactly as the contract in
`curate.schemas.tables` says; how similarity is really computed does not matter here.
"""

from __future__ import annotations

import zlib
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from curate.io.formats.detect import find_shards, reader_for
from curate.schemas.arrow_schemas import scores_schema
from curate.schemas.layout import RunLayout
from curate.schemas.sample import Sample
from curate.schemas.tables import ScoresInfo, read_embeddings_info

PROJECTION = "fp-filter-test"


def pseudo_similarity(key: str) -> float:
    """A stable value in [-1, 1) spread over the range, from the key alone."""
    return (zlib.crc32(key.encode()) % 20_000) / 10_000 - 1.0


def _info(shard_id: str, source: Path | str, fmt: str, projection: str) -> ScoresInfo:
    return ScoresInfo(
        shard_id=shard_id, source=str(source), format=fmt, projection=projection,
        projection_dir="/nowhere/projection", versions={"curate": "test"},
    )


def _write(layout: RunLayout, info: ScoresInfo, meta: pa.Schema, columns: dict[str, list]) -> Path:
    schema = scores_schema(info, meta)
    columns["similarity"] = [pseudo_similarity(k) for k in columns["key"]]
    table = pa.table({f.name: pa.array(columns.get(f.name), f.type) if f.name in columns
                      else pa.nulls(len(columns["key"]), f.type) for f in schema}, schema=schema)
    target = layout.scores(info.shard_id)
    target.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, target)
    return target


def score_shards(shards: list[Path], run: Path, *, projection: str = PROJECTION) -> RunLayout:
    """Score every usable sample of `shards` straight from the readers (no embeddings)."""
    layout = RunLayout(run)
    for shard in find_shards(shards):
        reader = reader_for(shard)
        samples = [r for r in reader if isinstance(r, Sample)]
        meta = reader.meta_schema()
        columns = {"key": [s.key for s in samples], "text": [s.text for s in samples]}
        columns.update({name: [s.meta.get(name) for s in samples] for name in meta.names})
        _write(layout, _info(shard.shard_id, shard.path.resolve(), shard.format, projection), meta, columns)
    return layout


def score_embeddings(layout: RunLayout, *, projection: str = PROJECTION) -> RunLayout:
    """Score an embedded run: one scores file per embeddings file, its meta kept."""
    for path in layout.shard_files("embeddings"):
        emb = read_embeddings_info(pq.read_schema(path))
        table = pq.read_table(path).drop_columns(["image_emb", "text_emb"])
        meta = pa.schema([f for f in table.schema if f.name not in ("key", "text")])
        _write(layout, _info(emb.shard_id, emb.source, emb.format, projection), meta, table.to_pydict())
    return layout
