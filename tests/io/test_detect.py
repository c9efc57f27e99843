"""Finding shards: detection per format, walking, overrides and one-line refusals."""

from __future__ import annotations

import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from curate.errors import CurateError
from curate.io.formats.detect import detect_format, find_shards, reader_for
from curate.synthetic.shards import write_sample_shards
from tests.fixtures import samples, wds_members, write_tar


@pytest.fixture
def mixed_dir(tmp_path: Path, sample_shards: list[Path]) -> Path:
    """The four sample shards plus the kind of clutter real input folders hold."""
    root = tmp_path / "mixed"
    shutil.copytree(sample_shards[0].parent.parent, root)
    (root / "README.md").write_text("notes")
    (root / "diffusiondb" / "part-000001.json").write_text("{}")  # a JSON beside a zip
    pq.write_table(pa.table({"key": ["a"], "text": ["t"], "similarity": pa.array([0.5], pa.float32())}),
                   root / "scores.parquet")
    emb = pa.array([[0.0, 1.0]], pa.list_(pa.float16(), 2))
    pq.write_table(pa.table({"key": ["a"], "image_emb": emb, "text_emb": emb}), root / "emb.parquet")
    (root / "webdataset" / ".00009.tar.123.tmp").write_bytes(b"half")
    write_tar(root / "webdataset" / ".hidden.tar", wds_members(0))
    (root / "loop").symlink_to(root, target_is_directory=True)
    write_tar(root / "imagefolder" / "scenes-folder-00001" / "inner.tar", wds_members(0))
    return root


def test_mixed_directory_finds_each_format_once(mixed_dir: Path) -> None:
    shards = find_shards([mixed_dir])
    assert [(s.format, s.shard_id) for s in shards] == [
        ("diffusiondb", "part-000001"),
        ("imagefolder", "scenes-folder-00001"),  # and its inner.tar is not walked into
        ("parquet", "scenes-00001"),
        ("webdataset", "00001"),
    ]
    assert find_shards([mixed_dir]) == shards  # deterministic


def test_non_image_parquet_files_are_not_shards(mixed_dir: Path) -> None:
    assert detect_format(mixed_dir / "scores.parquet") is None
    assert detect_format(mixed_dir / "emb.parquet") is None
    assert detect_format(mixed_dir / "diffusiondb" / "metadata.parquet") is None
    struct = pa.struct([("path", pa.string()), ("thumbnail", pa.binary())])
    no_bytes = mixed_dir / "paths.parquet"
    pq.write_table(pa.table({"image": pa.array([{"path": "a", "thumbnail": b"t"}], struct)}), no_bytes)
    assert detect_format(no_bytes) is None
    assert detect_format(mixed_dir / "parquet" / "scenes-00001.parquet") == "parquet"


def test_explicit_file_of_no_format_is_refused(mixed_dir: Path) -> None:
    with pytest.raises(CurateError, match="README.md is not a shard of any known format"):
        find_shards([mixed_dir / "README.md"])
    with pytest.raises(CurateError, match="scores.parquet"):
        find_shards([mixed_dir / "scores.parquet"])


def test_explicit_files_and_folders_together_are_not_counted_twice(mixed_dir: Path) -> None:
    tar = mixed_dir / "webdataset" / "00001.tar"
    shards = find_shards([tar, mixed_dir])
    assert [s.shard_id for s in shards].count("00001") == 1 and len(shards) == 4


def test_format_override_forces_an_explicit_file(tmp_path: Path) -> None:
    odd = write_tar(tmp_path / "shard.bin", wds_members(0) + wds_members(1))
    with pytest.raises(CurateError):
        find_shards([odd])
    (shard,) = find_shards([odd], format="webdataset")
    assert (shard.format, shard.shard_id) == ("webdataset", "shard")
    assert len(samples(list(reader_for(shard)))) == 2


def test_format_override_restricts_a_walk(mixed_dir: Path) -> None:
    shards = find_shards([mixed_dir], format="parquet")
    assert [(s.format, s.shard_id) for s in shards] == [("parquet", "scenes-00001")]


def test_unknown_format_lists_known_ones(tmp_path: Path) -> None:
    with pytest.raises(CurateError) as info:
        find_shards([tmp_path], format="csv")
    assert str(info.value) == ("Unknown format 'csv'; known: arrow, diffusiondb, imagefolder, parquet, "
                               "webdataset.")


def test_missing_path_is_one_sentence(tmp_path: Path) -> None:
    with pytest.raises(CurateError) as info:
        find_shards([tmp_path / "nope"])
    assert str(info.value) == f"Input path {tmp_path / 'nope'} does not exist."


def test_nothing_found(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(CurateError, match="No shards found"):
        find_shards([tmp_path])


def test_same_named_shards_in_sibling_folders_get_their_folder_in_the_id(tmp_path: Path) -> None:
    """Once refused ("Shard ids collide"); now the folder above tells them apart."""
    for sub in ("a", "b"):
        (tmp_path / sub).mkdir()
    a = write_tar(tmp_path / "a" / "x.tar", wds_members(0))
    b = tmp_path / "b" / "x.parquet"
    pq.write_table(pa.table({"jpg": pa.array([b"i"], pa.binary())}), b)
    shards = find_shards([tmp_path])
    assert {s.path: s.shard_id for s in shards} == {a: "a__x", b: "b__x"}


def test_ids_no_folder_tells_apart_are_still_refused_naming_both_paths(tmp_path: Path) -> None:
    from curate.io.formats.base import Shard
    from curate.io.formats.detect import _refuse_collisions

    a = Shard(tmp_path / "a" / "x.tar", "webdataset", "x")
    b = Shard(tmp_path / "b" / "x.parquet", "parquet", "x")
    with pytest.raises(CurateError) as info:
        _refuse_collisions([a, b])
    message = str(info.value)
    assert "'x'" in message and str(a.path) in message and str(b.path) in message


def test_image_folder_given_explicitly(tmp_path: Path) -> None:
    paths = write_sample_shards(tmp_path, per_shard=2)
    folder = next(p for p in paths if p.is_dir())
    (shard,) = find_shards([folder])
    assert (shard.format, shard.shard_id, shard.path) == ("imagefolder", folder.name, folder)
