"""A scored run made without `curate score`: real embeddings, scores written to the contract.

`report` and `sql` only read `scores/` files; writing them here with `scores_schema` and a
deterministic pseudo-similarity keeps their tests independent of how scoring is computed.
"""

from __future__ import annotations

import json
import zlib
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from curate.pipelines.embed import run_embed
from curate.schemas.arrow_schemas import scores_schema
from curate.schemas.config.flow import EmbedConfig, EncoderConfig
from curate.schemas.layout import RunLayout
from curate.schemas.tables import ScoresInfo, read_embeddings_info
from tests.fixtures import wds_members, write_tar

PROJECTION_CARD = {"loss": "contrastive", "dim": 16, "temperature": 0.07, "validation": {"roc_auc": 0.97}}


def pseudo_similarity(key: str) -> float:
    """A stable, spread-out value in [-0.1, 0.9) from the key alone."""
    return (zlib.crc32(key.encode()) % 10_000) / 10_000 - 0.1


def broken_tar(folder: Path) -> Path:
    """A webdataset shard with 3 good samples, one undecodable image and one missing caption."""
    members = wds_members(900) + wds_members(901) + wds_members(902)
    members += [("000000903.png", b"not a picture at all"), ("000000903.txt", b"a red circle")]
    members += [("000000904.png", wds_members(904)[0][1])]
    folder.mkdir(parents=True, exist_ok=True)
    return write_tar(folder / "broken-00001.tar", members)


def write_scores(layout: RunLayout, *, projection_dir: Path) -> list[Path]:
    """scores/<shard-id>.parquet for every embeddings file, keeping its meta columns."""
    written = []
    for path in layout.shard_files("embeddings"):
        table = pq.read_table(path, columns=None).drop_columns(["image_emb", "text_emb"])
        emb = read_embeddings_info(pq.read_schema(path))
        info = ScoresInfo(
            shard_id=emb.shard_id, source=emb.source, format=emb.format, projection="fp-test",
            projection_dir=str(projection_dir), versions=emb.versions,
        )
        meta = pa.schema([f for f in table.schema if f.name not in ("key", "text")])
        schema = scores_schema(info, meta)
        sims = pa.array([pseudo_similarity(k) for k in table.column("key").to_pylist()], pa.float32())
        columns = {f.name: (sims if f.name == "similarity" else table.column(f.name)) for f in schema}
        target = layout.scores(emb.shard_id)
        target.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.table(columns, schema=schema), target)
        written.append(target)
    return written


def make_scored_run(shards: list[Path], out: Path, encoders: EncoderConfig) -> RunLayout:
    """Embed `shards` (plus a broken one, for the error table) and score them."""
    inputs = (*shards, broken_tar(out.parent / "broken"))
    run_embed(EmbedConfig(inputs=inputs, out=out, encoders=encoders, batch_size=8, workers=0), quiet=True)
    projection = out.parent / "projection"
    projection.mkdir(exist_ok=True)
    (projection / "card.json").write_text(json.dumps(PROJECTION_CARD))
    layout = RunLayout(out)
    write_scores(layout, projection_dir=projection)
    return layout


@pytest.fixture(scope="session")
def scored_run(sample_shards: list[Path], tiny_encoders: EncoderConfig, tmp_path_factory) -> RunLayout:
    """Four formats of sample shards plus a broken tar, embedded with tiny encoders, scored."""
    return make_scored_run(sample_shards, tmp_path_factory.mktemp("scored") / "run", tiny_encoders)
