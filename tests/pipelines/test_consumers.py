"""A run that mixes sources, read with the tools users have; its subsets, read with theirs.

The run embeds (tiny encoders), trains and scores for real: the four sample formats,
img2dataset's tar and Parquet outputs of one download (with failed URLs), a `save_to_disk`
folder and the Hub's `default/{train,test}/0000.parquet` layout (shard ids `train__0000`,
`test__0000`, which `datasets` would take for splits if a subset named folders after them),
whose `file_name` column clashes with the image folder's own. Then DuckDB, pyarrow, pandas, polars and `datasets` read `scores/` as one
table, and `datasets` (parquet, imagefolder) and `webdataset` read the subsets.
"""

from __future__ import annotations

import glob
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq
import pytest

from curate.io.formats.detect import find_shards, reader_for
from curate.pipelines.embed import run_embed
from curate.pipelines.filter import run_filter
from curate.pipelines.score import run_score
from curate.schemas.config.flow import EmbedConfig, FilterConfig, ScoreConfig
from curate.schemas.sample import ErrorKind, Sample
from curate.schemas.tables import FALSE_MATCH_RATE, PAIR_FACTS, RESERVED_COLUMNS, read_scores_info
from curate.synthetic.scenes import render_scene
from tests.pipelines.scene_runs import one_thread, tiny_projection

datasets = pytest.importorskip("datasets")


@dataclass(frozen=True)
class MixedRun:
    inputs: tuple[Path, ...]
    run: Path
    records: int  # what the readers yield over all inputs
    meta: set[str]  # every source meta column, as the readers name them
    errors: dict[str, int]  # error kind -> count over the run


def hub_layout(folder: Path) -> Path:
    """The Hub's parquet-converter layout (`default/train/0000.parquet`, `default/test/0000.parquet`),
    written by `datasets`, with a `file_name` column (an image folder's metadata) in every row."""
    for split, start in (("train", 50), ("test", 53)):
        ds = datasets.Dataset.from_dict({
            "image": [{"bytes": render_scene(start + i).image, "path": None} for i in range(3)],
            "caption": [render_scene(start + i).caption for i in range(3)],
            "file_name": ["clash.png"] * 3, "rank": list(range(3))}).cast_column("image", datasets.Image())
        ds.to_parquet(str(folder / "default" / split / "0000.parquet"))
    return folder / "default"


def save_to_disk_folder(folder: Path) -> Path:
    ds = datasets.Dataset.from_dict({
        "image": [{"bytes": render_scene(60 + i).image, "path": f"{i}.png"} for i in range(4)],
        "text": [render_scene(60 + i).caption for i in range(4)], "aesthetic": [5.0 + i for i in range(4)]})
    ds.cast_column("image", datasets.Image()).save_to_disk(str(folder / "saved"))
    return folder / "saved"


@pytest.fixture(scope="module")
def mixed(sample_shards, img2dataset_output, tiny_encoders, tmp_path_factory) -> MixedRun:
    root = tmp_path_factory.mktemp("mixed")
    (root / "hf").mkdir()
    inputs = (*sample_shards, *img2dataset_output.folders.values(), hub_layout(root / "hf"),
              save_to_disk_folder(root / "hf"))
    shards = find_shards(inputs)
    records = [r for s in shards for r in reader_for(s)]
    meta = {n for s in shards for n in reader_for(s).meta_schema().names}
    run = root / "run"
    with one_thread():
        run_embed(EmbedConfig(inputs=inputs, out=run, encoders=tiny_encoders, batch_size=16, workers=0), quiet=True)
        projection = tiny_projection(run, root / "projection")
        run_score(ScoreConfig(inputs=(run,), projection=projection, out=run, device="cpu"), quiet=True)
    errors = duckdb.sql(f"SELECT error, count(*) FROM '{run}/errors/*.parquet' GROUP BY error").fetchall()
    return MixedRun(inputs, run, len(records), meta, dict(errors))


def test_every_record_is_a_score_or_an_error(mixed):
    scored = pq.read_table(mixed.run / "scores").num_rows
    assert scored + sum(mixed.errors.values()) == mixed.records  # in = out + errors
    assert mixed.errors[ErrorKind.DOWNLOAD_FAILED] == 4  # 2 failed URLs, in both img2dataset outputs


def test_scores_read_as_one_table_by_every_tool(mixed, tmp_path):
    import pandas as pd
    import polars as pl

    scores = mixed.run / "scores"
    want = {"key", "text", "similarity", FALSE_MATCH_RATE, *PAIR_FACTS} | mixed.meta  # scores' own columns, then meta
    assert {"NSFW", "similarity_from_source", "seed", "file_name", "aesthetic", "status"} <= want
    rows = pq.read_table(mixed.run / "scores").num_rows

    duck = duckdb.sql(f"SELECT * FROM '{scores}/*.parquet'")
    assert set(duck.columns) == want and len(duck.fetchall()) == rows
    table = pq.read_table(scores)
    assert set(table.column_names) == want
    dataset = pads.dataset(scores, format="parquet")
    assert set(dataset.schema.names) == want and dataset.count_rows() == rows
    frame = pd.read_parquet(scores)
    assert set(frame.columns) == want and len(frame) == rows
    polars = pl.read_parquet(f"{scores}/*.parquet")
    assert set(polars.columns) == want and polars.height == rows
    hf = datasets.load_dataset("parquet", data_files=f"{scores}/*.parquet", split="train", cache_dir=str(tmp_path))
    assert set(hf.column_names) == want and hf.num_rows == rows
    nsfw = duckdb.sql(f"SELECT count(*) FROM '{scores}/*.parquet' WHERE NSFW = 'UNLIKELY'").fetchall()[0][0]
    assert nsfw == 10  # the 5 downloaded scenes, from both img2dataset outputs


def test_a_second_score_run_with_new_columns_widens_the_old_files(mixed, tmp_path):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(mixed.run, run)
    before = pq.read_schema(next((run / "scores").glob("*.parquet")))
    extra = tmp_path / "extra"
    extra.mkdir()
    pq.write_table(pa.table({"jpg": pa.array([render_scene(90).image], pa.binary()),
                             "caption": [render_scene(90).caption], "brand_new": [7]}), extra / "late.parquet")
    projection = Path(read_scores_info(before).projection_dir)
    with one_thread():
        run_score(ScoreConfig(inputs=(extra,), projection=projection, out=run, device="cpu"), quiet=True)
    schemas = {pq.read_schema(p).remove_metadata() for p in (run / "scores").glob("*.parquet")}
    assert len(schemas) == 1 and "brand_new" in schemas.pop().names and "brand_new" not in before.names
    assert duckdb.sql(f"SELECT count(*) FROM '{run}/scores/*.parquet' WHERE brand_new = 7").fetchall()[0][0] == 1


@pytest.fixture(scope="module")
def subsets(mixed, tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("mixed-subsets")
    for fmt in ("parquet", "imagefolder", "webdataset"):
        run_filter(FilterConfig(run_dir=mixed.run, out=root / fmt, min_sim=-1.0, format=fmt, shard_size=20),
                   quiet=True)
    return {fmt: root / fmt for fmt in ("parquet", "imagefolder", "webdataset")}


def scored_rows(mixed: MixedRun) -> dict[str, dict]:
    return {row["key"]: row for row in pq.read_table(mixed.run / "scores").to_pylist()}


def test_parquet_subset_loads_as_a_datasets_image_feature(mixed, subsets, tmp_path):
    ds = datasets.load_dataset("parquet", data_files=f"{subsets['parquet']}/*.parquet", split="train",
                               cache_dir=str(tmp_path))
    scored = scored_rows(mixed)
    assert isinstance(ds.features["image"], datasets.Image) and ds.num_rows == len(scored)
    for row in ds:
        source = scored[row["source_key"]]
        assert row["caption"] == source["text"] and row["similarity"] == pytest.approx(source["similarity"])
        assert row["image"].size[0] > 0  # decoded to a PIL image
        assert row.get("NSFW") == source["NSFW"] and row["file_name_from_source"] == source["file_name"]


def test_imagefolder_subset_loads_as_one_split_with_captions_and_meta(mixed, subsets, tmp_path):
    out = subsets["imagefolder"]
    loaded = datasets.load_dataset("imagefolder", data_dir=str(out), cache_dir=str(tmp_path))
    assert list(loaded) == ["train"]
    ds = loaded["train"]
    scored = scored_rows(mixed)
    assert ds.num_rows == len(scored) and "label" not in ds.column_names
    assert {"caption", "similarity", "source_key", "file_name_from_source", "NSFW"} <= set(ds.column_names)
    for row in ds:
        assert row["caption"] == scored[row["source_key"]]["text"] and row["image"].size[0] > 0
    clashing = [r for r in ds if r["file_name_from_source"] == "clash.png"]
    assert len(clashing) == 6  # the source's file_name kept aside, never written over the writer's own
    listed = [(Path(m).parent, name) for m in glob.glob(f"{out}/*/metadata.parquet")
              for name in pq.read_table(m).column("file_name").to_pylist()]
    assert len(listed) == len(scored) and all((folder / name).is_file() for folder, name in listed)
    again = [r for s in find_shards([out]) for r in reader_for(s)]
    assert len(again) == len(scored) and all(isinstance(r, Sample) for r in again)  # valid `curate embed` input


def test_webdataset_subset_reads_with_webdataset_and_keeps_meta(mixed, subsets):
    wds = pytest.importorskip("webdataset")
    urls = sorted(str(p) for p in subsets["webdataset"].glob("*.tar"))
    got = list(wds.WebDataset(urls, shardshuffle=False).decode("pil"))
    scored = scored_rows(mixed)
    assert len(got) == len(scored)
    for sample in got:
        meta = sample["json"]
        source = scored[meta["source_key"]]
        assert sample["txt"] == source["text"] and meta["similarity"] == pytest.approx(source["similarity"])
        image = next(sample[e] for e in ("png", "jpg", "webp") if e in sample)
        assert image.size[0] > 0
        # the pair facts are the scores' own columns, not the source's meta: subsets do not carry them (yet)
        named = {k for k in source if k not in RESERVED_COLUMNS and source[k] is not None} - {"file_name", *PAIR_FACTS}
        assert named <= set(meta)  # every source meta field that has a value is in the .json


def test_tar_meta_beyond_img2datasets_fields_survives_filter_then_embed(mixed, subsets, tiny_encoders, tmp_path):
    with one_thread():
        again = run_embed(EmbedConfig(inputs=(subsets["webdataset"],), out=tmp_path / "run2", encoders=tiny_encoders,
                                      batch_size=16, workers=0), quiet=True)
    assert again.pairs == len(scored_rows(mixed)) and not again.errors
    # Embeddings files keep each shard's own columns: read them by name, as the docs say.
    table = duckdb.sql(f"SELECT * EXCLUDE (image_emb, text_emb) FROM read_parquet("
                       f"'{tmp_path}/run2/embeddings/*.parquet', union_by_name = true)").to_arrow_table()
    assert {"NSFW", "LICENSE", "status", "exif", "similarity_from_source", "seed", "aesthetic", "file_name_from_source",
            "source_key"} <= set(table.column_names)
    downloaded = [r for r in table.select(["NSFW", "LICENSE"]).to_pylist() if r["NSFW"] is not None]
    assert downloaded == [{"NSFW": "UNLIKELY", "LICENSE": "cc-by"}] * 10
    seeds = {r["source_key"]: r["seed"] for r in table.select(["source_key", "seed"]).to_pylist()}
    assert {k: v for k, v in seeds.items() if v is not None} == {
        k: r["seed"] for k, r in scored_rows(mixed).items() if r["seed"] is not None}
