"""Round trips writer -> reader for every format, plus each format's own layouts."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from curate.io.formats.base import Shard
from curate.io.formats.detect import find_shards, reader_for
from curate.io.formats.diffusiondb import DiffusionDBReader
from curate.io.formats.parquet import ParquetReader
from curate.io.formats.webdataset import WebDatasetWriter
from curate.schemas.sample import ErrorKind, Sample
from curate.synthetic.scenes import render_scene
from curate.synthetic.shards import PLANS, member_name, write_scenes
from tests.fixtures import (
    error_kinds,
    errors,
    image_bytes,
    read_all,
    samples,
    write_tar,
    write_zip,
)

FORMATS = sorted(PLANS)
# Formats whose member keeps the image's extension (the member is a file name).
FILE_NAME_MEMBERS = {"diffusiondb", "imagefolder"}


def _expected_member(fmt: str, index: int, extension: str) -> str:
    base = member_name(index)
    return f"{base}.{extension}" if fmt in FILE_NAME_MEMBERS else base


@pytest.mark.parametrize("fmt", FORMATS)
def test_round_trip_keeps_keys_texts_images_and_meta(tmp_path: Path, fmt: str) -> None:
    plan = PLANS[fmt]
    scenes = [render_scene(i, size=48, image_format=plan.image_format) for i in range(5)]
    path = write_scenes(tmp_path / plan.path.format(n=7), fmt, scenes)

    (shard,) = find_shards([path])
    assert shard.format == fmt
    records = list(reader_for(shard))

    assert errors(records) == []
    got = {s.key: s for s in samples(records)}
    for scene in scenes:
        key = f"{shard.shard_id}/{_expected_member(fmt, scene.index, scene.extension)}"
        sample = got.pop(key)
        assert sample.image == scene.image
        assert sample.text == scene.caption
        written = plan.meta(scene)  # values exact in their Arrow types (7.0 in float32)
        assert {name: sample.meta[name] for name in written} == written
    assert got == {}


@pytest.mark.parametrize("fmt", FORMATS)
def test_meta_dicts_hold_exactly_the_announced_schema(sample_shards: list[Path], fmt: str) -> None:
    (shard,) = [s for s in find_shards(sample_shards) if s.format == fmt]
    reader = reader_for(shard)
    names = reader.meta_schema().names
    records = list(reader)
    assert records and all(list(r.meta) == names for r in samples(records))
    # The values fit the announced types: Arrow accepts them without inference.
    rows = [r.meta for r in samples(records)]
    pa.Table.from_pylist(rows, schema=reader.meta_schema())


@pytest.mark.parametrize("fmt", FORMATS)
def test_two_reads_give_identical_keys_in_identical_order(sample_shards: list[Path], fmt: str) -> None:
    (shard,) = [s for s in find_shards(sample_shards) if s.format == fmt]
    first = [r.key for r in reader_for(shard)]
    second = [r.key for r in reader_for(shard)]
    assert first == second
    assert len(first) == 8 and len(set(first)) == 8
    assert all(k.startswith(f"{shard.shard_id}/") for k in first)


@pytest.mark.parametrize("fmt", FORMATS)
def test_estimate_count_matches_samples(sample_shards: list[Path], fmt: str) -> None:
    (shard,) = [s for s in find_shards(sample_shards) if s.format == fmt]
    assert reader_for(shard).estimate_count() == 8


def test_same_scene_gives_same_bytes_in_every_format(same_scenes: dict[str, Path]) -> None:
    by_format = {}
    for fmt, path in same_scenes.items():
        (shard,) = find_shards([path])
        by_format[fmt] = {s.key.split("/", 1)[1].split(".")[0]: s for s in reader_for(shard)}
    members = [set(v) for v in by_format.values()]
    assert all(m == members[0] for m in members) and len(members[0]) == 6
    for member in members[0]:
        images = {fmt: got[member].image for fmt, got in by_format.items()}
        texts = {fmt: got[member].text for fmt, got in by_format.items()}
        assert len(set(images.values())) == 1, member
        assert len(set(texts.values())) == 1, member


def test_readers_never_decode_images(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Garbage image bytes pass through untouched, and PIL is never asked to open them."""
    import PIL.Image

    monkeypatch.setattr(PIL.Image, "open", lambda *a, **k: pytest.fail("reader decoded an image"))
    garbage = b"\xff\xd8\xffthis is not really a jpeg"
    path = write_tar(tmp_path / "g.tar", [("a.jpg", garbage), ("a.txt", b"x")])
    (sample,) = read_all(path, "webdataset")
    assert sample.image == garbage


# --- DiffusionDB ---------------------------------------------------------------------------


def _dbjson(entries: dict) -> bytes:
    return json.dumps(entries).encode()


def test_diffusiondb_meta_joins_metadata_parquet(sample_shards: list[Path]) -> None:
    part1 = next(p for p in sample_shards if p.suffix == ".zip")
    (shard,) = find_shards([part1])
    got = samples(list(reader_for(shard)))
    assert {s.meta["part_id"] for s in got} == {1}
    assert all(s.meta["user_name"] == "scene-renderer" and s.meta["width"] == 96 for s in got)
    assert all(s.meta["seed"] == 1000 + int(s.key.split("-")[-1].split(".")[0]) for s in got)


def test_diffusiondb_metadata_filter_reads_only_the_part(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import curate.io.formats.diffusiondb as ddb

    scenes = [render_scene(i, size=32) for i in range(3)]
    write_scenes(tmp_path / "part-000001.zip", "diffusiondb", scenes[:2])
    write_scenes(tmp_path / "part-000002.zip", "diffusiondb", scenes[2:])
    table = pq.read_table(tmp_path / "metadata.parquet")
    assert sorted(table.column("part_id").to_pylist()) == [1, 1, 2]

    rows_read = []
    real_read_table = pq.read_table

    def spy(*args, **kwargs):
        table = real_read_table(*args, **kwargs)
        rows_read.append(table.num_rows)
        return table

    monkeypatch.setattr(ddb.pq, "read_table", spy)
    part2 = read_all(tmp_path / "part-000002.zip", "diffusiondb")
    assert rows_read == [1]  # the other part's two rows were never loaded
    assert [s.meta["part_id"] for s in samples(part2)] == [2]
    assert [s.text for s in part2] == [scenes[2].caption]


def test_diffusiondb_json_beside_zip_and_metadata_prompt_fallback(tmp_path: Path) -> None:
    folder = tmp_path / "images"
    folder.mkdir()
    write_zip(folder / "part-000003.zip", [("a.png", image_bytes(0)), ("b.webp", image_bytes(1))])
    (folder / "part-000003.json").write_bytes(
        _dbjson({"a.png": {"p": "a prompt", "se": 7, "c": 7.5, "st": 25, "sa": "ddim"}})
    )
    meta_table = pa.table({"image_name": ["b.webp"], "prompt": ["from metadata"], "part_id": [3]})
    pq.write_table(meta_table, tmp_path / "metadata.parquet")  # DiffusionDB: one folder up

    got = {s.key: s for s in samples(read_all(folder / "part-000003.zip", "diffusiondb"))}
    a, b = got["part-000003/a.png"], got["part-000003/b.webp"]
    assert a.text == "a prompt" and a.meta["seed"] == 7 and a.meta["sampler"] == "ddim"
    assert a.meta["cfg"] == pytest.approx(7.5) and a.meta["step"] == 25
    assert b.text == "from metadata" and b.meta["seed"] is None and b.meta["part_id"] == 3


def test_diffusiondb_prompt_without_image_and_image_without_prompt(tmp_path: Path) -> None:
    path = write_zip(
        tmp_path / "part-000004.zip",
        [("x.png", image_bytes(0)), ("part-000004.json", _dbjson({"gone.png": {"p": "lost"}}))],
    )
    got = {s.key: s for s in read_all(path, "diffusiondb")}
    assert got["part-000004/x.png"].text is None and got["part-000004/x.png"].image
    assert got["part-000004/gone.png"].image is None and got["part-000004/gone.png"].text == "lost"
    assert len(got) == 2  # the JSON itself is not a sample


def test_diffusiondb_without_metadata_has_only_json_meta(tmp_path: Path) -> None:
    path = write_zip(tmp_path / "part-000005.zip", [("x.png", image_bytes(0))])
    reader = DiffusionDBReader(Shard(path, "diffusiondb", "part-000005"))
    assert reader.meta_schema().names == ["seed", "cfg", "step", "sampler"]


# --- WebDataset ----------------------------------------------------------------------------


def test_webdataset_partial_groups_keep_their_row(tmp_path: Path) -> None:
    path = write_tar(
        tmp_path / "p.tar",
        [
            ("000.png", image_bytes(0)),  # no caption, no json
            ("001.txt", b"only text"),  # no image
            ("002.png", image_bytes(2)),
            ("002.txt", b"full"),
            ("002.json", json.dumps({"url": "u", "width": "64", "height": 64.0, "status": "success"}).encode()),
            ("002.cls", b"7"),
        ],
    )
    got = {s.key: s for s in read_all(path, "webdataset")}
    assert got["p/000"].text is None and got["p/000"].meta["url"] is None
    assert got["p/001"].image is None and got["p/001"].text == "only text"
    full = got["p/002"]
    assert full.image == image_bytes(2) and full.text == "full"
    assert full.meta == {"url": "u", "width": 64, "height": 64, "original_width": None,
                         "original_height": None, "sha256": None, "status": "success"}  # every JSON field


def test_webdataset_keys_keep_folders_and_stop_at_first_dot(tmp_path: Path) -> None:
    path = write_tar(
        tmp_path / "d.tar",
        [("sub.dir/abc.seg.png", image_bytes(0)), ("sub.dir/abc.txt", b"t")],
    )
    (sample,) = read_all(path, "webdataset")
    assert sample.key == "d/sub.dir/abc" and sample.text == "t"


def test_webdataset_writer_json_has_key_meta_and_extra(tmp_path: Path) -> None:
    import tarfile

    with WebDatasetWriter(tmp_path / "out.tar") as writer:
        sample = Sample("src/img.one.png", image_bytes(0), "cap", {"url": "http://x", "width": 32})
        writer.write(sample, extra={"similarity": 0.25})
    with tarfile.open(tmp_path / "out.tar") as tar:
        names = tar.getnames()
        payload = json.loads(tar.extractfile("img_one.json").read())
    assert names == ["img_one.png", "img_one.txt", "img_one.json"]
    assert payload == {"key": "img_one", "url": "http://x", "width": 32, "similarity": 0.25}


def test_writer_abort_leaves_nothing(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError):
        with WebDatasetWriter(tmp_path / "x.tar") as writer:
            writer.write(Sample("s/a", image_bytes(0), "t"))
            raise RuntimeError("killed")
    assert list(tmp_path.iterdir()) == []


# --- Parquet -------------------------------------------------------------------------------


def test_img2dataset_parquet_layout(tmp_path: Path) -> None:
    table = pa.table(
        {
            "key": ["000000010", "000000011"],
            "jpg": pa.array([image_bytes(0, image_format="JPEG"), None], pa.binary()),
            "txt": ["first", "second"],
            "url": ["http://a", "http://b"],
            "width": pa.array([32, None], pa.int32()),
            "exif": pa.array([["x"], []], pa.list_(pa.string())),  # nested: not meta
            "status": ["success", "failed_to_download"],
        }
    )
    pq.write_table(table, tmp_path / "00000.parquet")
    reader = ParquetReader(Shard(tmp_path / "00000.parquet", "parquet", "00000"))
    assert reader.meta_schema() == pa.schema([("url", pa.string()), ("width", pa.int32()),
                                              ("status", pa.string())])
    first, second = list(reader)
    assert first.key == "00000/000000010" and first.text == "first" and first.meta["width"] == 32
    # A failed download is an error carrying img2dataset's status (it used to be image=None).
    assert second.key == "00000/000000011" and second.error == ErrorKind.DOWNLOAD_FAILED
    assert second.message.startswith("failed_to_download")


def test_parquet_without_key_uses_padded_row_index(tmp_path: Path) -> None:
    table = pa.table({"image": pa.array([image_bytes(i) for i in range(3)], pa.binary()),
                      "caption": ["a", "b", "c"]})
    pq.write_table(table, tmp_path / "rows.parquet", row_group_size=1)
    keys = [r.key for r in read_all(tmp_path / "rows.parquet", "parquet")]
    assert keys == ["rows/000000", "rows/000001", "rows/000002"]


def test_huggingface_image_struct(tmp_path: Path) -> None:
    datasets = pytest.importorskip("datasets")
    ds = datasets.Dataset.from_dict(
        {"picture": [{"bytes": image_bytes(0), "path": None}, {"bytes": image_bytes(1), "path": "x.png"}],
         "text": ["one", "two"], "label": [3, 4]}
    ).cast_column("picture", datasets.Image())
    ds.to_parquet(str(tmp_path / "train-00000-of-00001.parquet"))

    (shard,) = find_shards([tmp_path])
    assert shard.format == "parquet" and shard.shard_id == "train-00000-of-00001"
    got = samples(list(reader_for(shard)))
    assert [s.image for s in got] == [image_bytes(0), image_bytes(1)]
    assert [s.text for s in got] == ["one", "two"]
    assert [s.meta for s in got] == [{"label": 3}, {"label": 4}]


def test_parquet_struct_without_bytes_is_missing_image(tmp_path: Path) -> None:
    """The path is looked up now (it used to give image=None unseen); an absent file is still
    `missing_image`, reported by the reader with the path it tried."""
    struct = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    table = pa.table({"image": pa.array([{"bytes": None, "path": "elsewhere.png"}], struct),
                      "text": ["t"]})
    pq.write_table(table, tmp_path / "s.parquet")
    (error,) = read_all(tmp_path / "s.parquet", "parquet")
    assert error.error == ErrorKind.MISSING_IMAGE and "elsewhere.png" in error.message


def test_parquet_reader_streams_batches_without_reading_whole_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    table = pa.table({"image": pa.array([b"img%d" % i for i in range(300)], pa.binary()),
                      "caption": [str(i) for i in range(300)]})
    pq.write_table(table, tmp_path / "big.parquet", row_group_size=100)

    def refuse(*_a, **_k):
        raise AssertionError("the whole file was loaded")

    monkeypatch.setattr(pq, "read_table", refuse)
    monkeypatch.setattr(pq.ParquetFile, "read", refuse)
    got = read_all(tmp_path / "big.parquet", "parquet")
    assert [s.text for s in got] == [str(i) for i in range(300)]


def test_parquet_writer_extra_columns_and_types(tmp_path: Path) -> None:
    from curate.io.formats.parquet import ParquetWriter

    extra_schema = pa.schema([("similarity", pa.float32())])
    with ParquetWriter(tmp_path / "o.parquet", extra_schema=extra_schema, batch_rows=2) as writer:
        for i in range(5):
            writer.write(Sample(f"s/{i}", image_bytes(i), f"t{i}", {}), extra={"similarity": i / 10})
    table = pq.read_table(tmp_path / "o.parquet")
    assert table.schema.field("similarity").type == pa.float32()
    assert table.column("key").to_pylist() == ["0", "1", "2", "3", "4"]
    # A meta column named like the writer's own is kept under `<name>_from_source`, never clobbering.
    with ParquetWriter(tmp_path / "p.parquet") as writer:
        writer.write(Sample("s/0", image_bytes(0), "t", {"caption": "oops"}))
    row = pq.read_table(tmp_path / "p.parquet").to_pylist()[0]
    assert row["caption"] == "t" and row["caption_from_source"] == "oops"


# --- Image folder --------------------------------------------------------------------------


def test_imgid_prompt_csv_with_extension_lookup_and_string_meta(tmp_path: Path) -> None:
    folder = tmp_path / "kaggle"
    folder.mkdir()
    (folder / "a1.png").write_bytes(image_bytes(0))
    (folder / "b2.jpg").write_bytes(image_bytes(1, image_format="JPEG"))
    (folder / "prompts.csv").write_text("imgId,prompt,score\na1,first prompt,0.5\nb2,second,\nc3,absent,1\n")

    reader = reader_for(find_shards([folder])[0])
    assert reader.meta_schema() == pa.schema([("score", pa.string())])
    records = list(reader)
    got = {s.key: s for s in samples(records)}
    assert got["kaggle/a1.png"].text == "first prompt" and got["kaggle/a1.png"].meta == {"score": "0.5"}
    assert got["kaggle/b2.jpg"].image == image_bytes(1, image_format="JPEG")
    assert error_kinds(records) == {"kaggle/c3": ErrorKind.MISSING_IMAGE}
    assert reader.estimate_count() == 3


def test_file_name_caption_csv_in_subfolders(tmp_path: Path) -> None:
    folder = tmp_path / "folder"
    (folder / "sub").mkdir(parents=True)
    (folder / "sub" / "x.webp").write_bytes(b"RIFF\x00\x00\x00\x00WEBPdata")
    (folder / "metadata.csv").write_text('file_name,caption\nsub/x.webp,"a, quoted\ncaption"\n')
    (sample,) = read_all(folder, "imagefolder")
    assert sample.key == "folder/sub/x.webp" and sample.text == "a, quoted\ncaption"


def test_reserved_column_names_never_become_meta(tmp_path: Path) -> None:
    """A filtered subset read back as input must not carry its old similarity as the meta
    `similarity` (the scores' own column); it is kept, as LAION's is, under `similarity_from_source`."""
    table = pa.table({"image": pa.array([b"i"], pa.binary()), "caption": ["c"],
                      "similarity": pa.array([0.3], pa.float32()), "url": ["u"]})
    pq.write_table(table, tmp_path / "subset.parquet")
    (sample,) = read_all(tmp_path / "subset.parquet", "parquet")
    assert sample.meta == {"similarity_from_source": pytest.approx(0.3), "url": "u"}

    folder = tmp_path / "f"
    folder.mkdir()
    (folder / "a.png").write_bytes(image_bytes(0))
    (folder / "captions.csv").write_text("file_name,caption,similarity,source\na.png,c,0.3,web\n")
    (sample,) = read_all(folder, "imagefolder")
    assert sample.meta == {"similarity_from_source": "0.3", "source": "web"}


def test_image_folder_writer_leaves_a_sweepable_temporary(tmp_path: Path) -> None:
    """A killed image-folder write leaves a temporary folder that the stale sweep removes."""
    from curate.io.atomic import remove_stale_tmp
    from curate.io.formats.imagefolder import ImageFolderWriter

    writer = ImageFolderWriter(tmp_path / "out")
    writer.write(Sample("s/a", image_bytes(0), "t"))  # no close: still being written by this live process
    assert writer.tmp.is_dir() and not (tmp_path / "out").exists()
    assert remove_stale_tmp(tmp_path) == 0, "a live writer's temporary is never swept"
    shutil.rmtree(writer.tmp)
    killed = (
        "import os, sys; from pathlib import Path; from curate.io.formats.imagefolder import ImageFolderWriter; "
        "from curate.schemas.sample import Sample; w = ImageFolderWriter(Path(sys.argv[1]) / 'out'); "
        "w.write(Sample('s/a', bytes.fromhex(sys.argv[2]), 't')); os._exit(0)"  # the process dies: no close
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    subprocess.run([sys.executable, "-c", killed, str(tmp_path), image_bytes(0).hex()], check=True, env=env)
    (left,) = tmp_path.iterdir()
    assert left.is_dir() and left.name.startswith(".out.") and not (tmp_path / "out").exists()
    assert remove_stale_tmp(tmp_path) == 1
    assert list(tmp_path.iterdir()) == []
