"""Shards as the tools users run write them: img2dataset, `datasets`, webdataset, DiffusionDB Large.

Each test writes its input with the real producer and checks what curate reads: counts
(in = out + errors), captions, meta columns and image bytes.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from curate.errors import CurateError
from curate.io.formats.detect import find_shards, reader_for
from curate.schemas.config.flow import ColumnsConfig
from curate.schemas.sample import ErrorKind, Sample
from curate.synthetic.scenes import render_scene
from curate.io.formats.diffusiondb import write_metadata_parquet
from tests.fixtures import error_kinds, errors, image_bytes, samples, write_zip
from tests.producers import IMAGES, MISSING

IMG2DATASET_META = {"url", "status", "error_message", "width", "height", "original_width", "original_height",
                    "exif", "sha256", "NSFW", "LICENSE", "similarity_from_source"}


def records_of(paths: list[Path], **kwargs):
    return {s.shard_id: list(reader_for(s)) for s in find_shards(paths, **kwargs)}


# --- img2dataset -------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["webdataset", "parquet"])
def test_img2dataset_output_keeps_every_field_and_counts_failed_downloads(img2dataset_output, fmt):
    (records,) = records_of([img2dataset_output.folders[fmt]]).values()
    got, failed = samples(records), errors(records)
    assert len(got) + len(failed) == IMAGES + MISSING  # in = out + errors: every URL it was given
    assert len(got) == IMAGES
    assert {e.error for e in failed} == {ErrorKind.DOWNLOAD_FAILED}
    assert all("failed_to_download" in e.message and "404" in e.message for e in failed)  # its own reason
    by_url = {row["url"]: row for row in img2dataset_output.urls}
    for sample in got:
        assert set(sample.meta) == IMG2DATASET_META
        asked = by_url[sample.meta["url"]]
        assert sample.text == asked["caption"]
        assert sample.meta["NSFW"] == asked["NSFW"] and sample.meta["LICENSE"] == asked["LICENSE"]
        assert sample.meta["similarity_from_source"] == pytest.approx(asked["similarity"])
        assert sample.meta["status"] == "success" and sample.meta["exif"] is not None
        assert Image.open(io.BytesIO(sample.image)).size == (sample.meta["width"], sample.meta["height"])


def test_img2dataset_tar_and_parquet_outputs_carry_the_same_meta(img2dataset_output):
    """The same download, whichever output format: the same fields with the same types."""
    readers = {s.format: reader_for(s) for s in find_shards(list(img2dataset_output.folders.values()))}
    assert readers["webdataset"].meta_schema() == readers["parquet"].meta_schema()
    metas = {fmt: {s.meta["url"]: s.meta for s in samples(list(r))} for fmt, r in readers.items()}
    assert metas["webdataset"] == metas["parquet"]


def test_two_img2dataset_folders_both_starting_at_00000_get_distinct_stable_ids(img2dataset_output):
    folders = list(img2dataset_output.folders.values())  # .../webdataset/00000.tar, .../parquet/00000.parquet
    shards = find_shards(folders)
    assert sorted(s.shard_id for s in shards) == ["parquet__00000", "webdataset__00000"]
    assert find_shards(folders) == shards
    assert [s.shard_id for s in find_shards(folders[:1])] == ["00000"]  # alone it keeps today's id


def test_same_named_tars_in_sibling_folders(tmp_path):
    from curate.synthetic.shards import write_scenes

    for sub in ("a", "b"):
        write_scenes(tmp_path / sub / "00000.tar", "webdataset", [render_scene(i) for i in range(2)])
    records = records_of([tmp_path])
    assert sorted(records) == ["a__00000", "b__00000"]
    assert {r.key.split("/")[0] for rs in records.values() for r in rs} == {"a__00000", "b__00000"}
    records = records_of([tmp_path / "a", tmp_path / "b"])  # given as two inputs: their own names
    assert sorted(records) == ["a__00000", "b__00000"]


# --- webdataset's own writer -------------------------------------------------------------------


def test_webdataset_shardwriter_tar_keeps_json_fields_beyond_img2datasets(tmp_path):
    wds = pytest.importorskip("webdataset")
    pattern = str(tmp_path / "shard-%06d.tar")
    with wds.ShardWriter(pattern, maxcount=10) as sink:
        for i in range(3):
            sink.write({"__key__": f"s{i:03d}", "png": image_bytes(i), "txt": f"caption {i}",
                        "json": {"url": f"u{i}", "license": "cc0", "aesthetic": 5.5 + i,
                                 "tags": ["a", "b"], "similarity": 0.9}})
    (records,) = records_of([tmp_path]).values()
    assert [s.text for s in samples(records)] == ["caption 0", "caption 1", "caption 2"]
    first = samples(records)[0]
    assert first.image == image_bytes(0)
    assert first.meta["license"] == "cc0" and first.meta["aesthetic"] == 5.5
    assert json.loads(first.meta["tags"]) == ["a", "b"]  # nested values as JSON text
    assert first.meta["similarity_from_source"] == 0.9 and "similarity" not in first.meta
    assert first.meta["width"] is None  # img2dataset's fixed fields are always there


# --- Hugging Face datasets ---------------------------------------------------------------------


@pytest.fixture
def scene_files(tmp_path) -> list[Path]:
    folder = tmp_path / "pictures"
    folder.mkdir()
    paths = []
    for i in range(4):
        paths.append(folder / f"{i}.png")
        paths[-1].write_bytes(render_scene(i).image)
    return paths


def test_datasets_images_stored_as_paths_are_read(tmp_path, scene_files):
    datasets = pytest.importorskip("datasets")
    ds = datasets.Dataset.from_dict({"image": [str(p) for p in scene_files],
                                     "text": [render_scene(i).caption for i in range(4)]})
    ds = ds.cast_column("image", datasets.Image())
    out = tmp_path / "paths" / "train.parquet"
    ds.to_parquet(str(out))
    stored = pq.read_table(out).column("image").to_pylist()
    assert all(v["bytes"] is None and v["path"] for v in stored)  # what `datasets` wrote: paths only
    (records,) = records_of([out]).values()
    assert [s.image for s in samples(records)] == [p.read_bytes() for p in scene_files]
    assert [s.text for s in samples(records)] == [render_scene(i).caption for i in range(4)]


def test_relative_image_paths_resolve_beside_the_file_and_never_outside(tmp_path, scene_files):
    folder = scene_files[0].parent
    (tmp_path / "secret.png").write_bytes(image_bytes(9))
    struct = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    paths = ["0.png", "sub/../1.png", "../secret.png", "/dev/zero", "absent.png", str(scene_files[2])]
    table = pa.table({"image": pa.array([{"bytes": None, "path": p} for p in paths], struct),
                      "caption": [f"c{i}" for i in range(len(paths))]})
    pq.write_table(table, folder / "rows.parquet")
    records = next(iter(records_of([folder / "rows.parquet"]).values()))
    assert [s.image for s in samples(records)] == [scene_files[0].read_bytes(), scene_files[2].read_bytes()]
    assert error_kinds(records) == {
        "rows/000001": ErrorKind.UNSAFE_MEMBER_NAME, "rows/000002": ErrorKind.UNSAFE_MEMBER_NAME,
        "rows/000003": ErrorKind.MISSING_IMAGE, "rows/000004": ErrorKind.MISSING_IMAGE}


def test_save_to_disk_folders_and_hub_parquet_layout(tmp_path, scene_files):
    datasets = pytest.importorskip("datasets")
    splits = {name: datasets.Dataset.from_dict(
        {"image": [{"bytes": p.read_bytes(), "path": p.name} for p in scene_files[part]],
         "caption": [f"{name} {i}" for i in range(2)], "id": [f"{name}-{i}" for i in range(2)]}
    ).cast_column("image", datasets.Image()) for name, part in (("train", slice(0, 2)), ("test", slice(2, 4)))}
    datasets.DatasetDict(splits).save_to_disk(str(tmp_path / "saved"))
    for name, ds in splits.items():  # the Hub's parquet-converter layout
        ds.to_parquet(str(tmp_path / "hub" / "default" / name / "0000.parquet"))

    saved = records_of([tmp_path / "saved"])
    assert sorted(saved) == ["test__data-00000-of-00001", "train__data-00000-of-00001"]
    assert [s.image for s in samples(saved["train__data-00000-of-00001"])] == [p.read_bytes() for p in scene_files[:2]]
    hub = records_of([tmp_path / "hub"])
    assert sorted(hub) == ["test__0000", "train__0000"]
    assert [s.text for s in samples(hub["test__0000"])] == ["test 0", "test 1"]
    assert samples(hub["test__0000"])[0].meta == {"id": "test-0"}
    named = records_of([tmp_path / "saved"], columns=ColumnsConfig(key_column="id"))
    assert [s.key for s in samples(named["test__data-00000-of-00001"])] == [
        "test__data-00000-of-00001/test-0", "test__data-00000-of-00001/test-1"]


def test_column_options_pick_columns_detection_would_not(tmp_path):
    table = pa.table({"photo": pa.array([image_bytes(0), image_bytes(1)], pa.binary()),
                      "title": ["t0", "t1"], "alt": ["a0", "a1"], "uid": [10, 11]})
    pq.write_table(table, tmp_path / "odd.parquet")
    with pytest.raises(CurateError, match="No shards found"):
        find_shards([tmp_path])
    columns = ColumnsConfig(image_column="photo", text_column="alt", key_column="uid")
    (shard,) = find_shards([tmp_path], columns=columns)
    got = samples(list(reader_for(shard)))
    assert [(s.key, s.text, s.meta) for s in got] == [("odd/10", "a0", {"title": "t0"}), ("odd/11", "a1", {"title": "t1"})]
    assert got[0].image == image_bytes(0)
    wrong = find_shards([tmp_path / "odd.parquet"], columns=ColumnsConfig(image_column="photo", text_column="nope"))
    (error,) = list(reader_for(wrong[0]))
    assert error.error == ErrorKind.UNREADABLE_SHARD and "no column 'nope' (--text-column)" in error.message


# --- Kaggle's image-to-prompt layout -----------------------------------------------------------


def test_kaggle_layout_finds_images_in_the_images_folder(tmp_path):
    data = tmp_path / "data"
    (data / "images").mkdir(parents=True)
    for i in range(7):
        (data / "images" / f"img{i}.png").write_bytes(image_bytes(i))
    rows = "".join(f"img{i},prompt {i}\n" for i in range(7))
    (data / "prompts.csv").write_text("imgId,prompt\n" + rows + "absent,gone\n")
    (records,) = records_of([data]).values()
    assert [s.image for s in samples(records)] == [image_bytes(i) for i in range(7)]
    assert [s.key for s in samples(records)][0] == "data/images/img0.png"
    assert error_kinds(records) == {"data/absent": ErrorKind.MISSING_IMAGE}


# --- DiffusionDB Large -------------------------------------------------------------------------


def test_diffusiondb_large_metadata_is_joined(tmp_path):
    part = tmp_path / "diffusiondb-large-part-1" / "part-000003.zip"
    part.parent.mkdir()
    names = [f"large-{i}.png" for i in range(3)]
    prompts = {n: {"p": f"prompt {i}", "se": i, "c": 7.0, "st": 50, "sa": "k_lms"} for i, n in enumerate(names)}
    write_zip(part, [(n, image_bytes(i)) for i, n in enumerate(names)] + [("part-000003.json", json.dumps(prompts).encode())])
    rows = [{"image_name": n, "prompt": f"prompt {i}", "part_id": 3, "width": 512 + i, "height": 768,
             "image_nsfw": 0.1 * i} for i, n in enumerate(names)]
    rows.append({"image_name": "other.png", "part_id": 4, "width": 1})  # another part's row: not read
    write_metadata_parquet(tmp_path / "metadata-large.parquet", rows)
    (records,) = records_of([tmp_path]).values()
    got = samples(records)
    assert [s.meta["width"] for s in got] == [512, 513, 514]
    assert [s.meta["image_nsfw"] for s in got] == pytest.approx([0.0, 0.1, 0.2])
    assert [s.text for s in got] == ["prompt 0", "prompt 1", "prompt 2"]


def test_remote_tar_meta_and_status_file_come_from_their_urls(img2dataset_output, tmp_path):
    """`filter` asks a source at a URL for its meta before copying it: the fields must be the
    same as from the local file, for img2dataset's tars (status file) and for plain ones."""
    from curate.io.formats.registry import sidecars_of
    from curate.io.formats.webdataset import WebDatasetWriter
    from curate.io.location import RemotePath

    plain = tmp_path / "plain"
    with WebDatasetWriter(plain / "00007.tar") as writer:  # a tar curate wrote: no status file
        for i in range(2):
            writer.write(Sample(f"s/{i}", image_bytes(i), f"t{i}", {"aesthetic": 5.5 + i}), extra={"similarity": 0.1})
    for folder, field in ((img2dataset_output.folders["webdataset"], "NSFW"), (plain, "aesthetic")):
        (local,) = find_shards([folder])
        (remote,) = find_shards([RemotePath(f"file://{folder}")])
        assert reader_for(remote).meta_schema() == reader_for(local).meta_schema()
        assert field in reader_for(remote).meta_schema().names
    (i2d,) = find_shards([RemotePath(f"file://{img2dataset_output.folders['webdataset']}")])
    assert [s.name for s in sidecars_of(i2d)] == ["00000.parquet"]
