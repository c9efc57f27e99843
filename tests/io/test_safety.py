"""Hostile and broken inputs: every one becomes an error row, none crashes or escapes."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import curate.io.safety as safety
from curate.io.safety import guard_records, unsafe_reason
from curate.schemas.sample import ErrorKind, Sample, SampleError, Stage
from curate.synthetic.scenes import render_scene
from curate.synthetic.shards import PLANS, write_scenes
from tests.fixtures import (
    add_tar_link,
    error_kinds,
    errors,
    image_bytes,
    read_all,
    samples,
    truncate,
    wds_members,
    write_tar,
    write_zip,
)


@pytest.mark.parametrize(
    "name",
    ["../evil.txt", "/etc/passwd", "a/../../b.png", "..\\..\\evil.png", "a\\..\\b", "C:\\x.png",
     "c:/x.png", "\\\\server\\share\\x.png", "a\x00b.png", "", "caf\udce9.png"],
)
def test_unsafe_names_are_refused(name: str) -> None:
    assert unsafe_reason(name) is not None


@pytest.mark.parametrize("name", ["a.png", "sub/dir/a.png", "..a.png", "a..b.png", "./a.png", "é.png"])
def test_ordinary_names_pass(name: str) -> None:
    assert unsafe_reason(name) is None


def test_tar_traversal_and_absolute_members_become_errors(tmp_path: Path) -> None:
    members = wds_members(0) + [("../evil.txt", b"pwned"), ("/etc/passwd", b"root:x")] + wds_members(1)
    path = write_tar(tmp_path / "t.tar", members)
    records = read_all(path, "webdataset")
    assert error_kinds(records) == {
        "t/../evil": ErrorKind.UNSAFE_MEMBER_NAME,
        "t//etc/passwd": ErrorKind.UNSAFE_MEMBER_NAME,
    }
    assert [s.key for s in samples(records)] == ["t/000000000", "t/000000001"]
    assert not (tmp_path.parent / "evil.txt").exists()


def test_tar_symlink_member_is_refused(tmp_path: Path) -> None:
    path = add_tar_link(write_tar(tmp_path / "l.tar", wds_members(0)), "link.png", "/etc/passwd")
    records = read_all(path, "webdataset")
    assert error_kinds(records) == {"l/link": ErrorKind.UNSAFE_MEMBER_NAME}
    assert len(samples(records)) == 1


def test_zip_traversal_member_is_refused(tmp_path: Path) -> None:
    path = write_zip(tmp_path / "part-000001.zip",
                     [("../evil.png", image_bytes(0)), ("ok.png", image_bytes(1)), ("../x.txt", b"")])
    records = read_all(path, "diffusiondb")
    assert error_kinds(records) == {
        "part-000001/../evil.png": ErrorKind.UNSAFE_MEMBER_NAME,
        "part-000001/../x.txt": ErrorKind.UNSAFE_MEMBER_NAME,
    }
    assert [s.key for s in samples(records)] == ["part-000001/ok.png"]


def test_non_utf8_caption_in_tar(tmp_path: Path) -> None:
    path = write_tar(tmp_path / "u.tar", wds_members(0, caption=b"caf\xe9 \xff") + wds_members(1))
    records = read_all(path, "webdataset")
    assert error_kinds(records) == {"u/000000000": ErrorKind.NON_UTF8_TEXT}
    assert [s.text for s in samples(records)] == ["caption 1"]


def test_non_utf8_caption_in_parquet_binary_column(tmp_path: Path) -> None:
    table = pa.table({"jpg": pa.array([b"i1", b"i2"], pa.binary()),
                      "txt": pa.array([b"ok", b"\xff\xfe"], pa.binary())})
    pq.write_table(table, tmp_path / "b.parquet")
    records = read_all(tmp_path / "b.parquet", "parquet")
    assert error_kinds(records) == {"b/000001": ErrorKind.NON_UTF8_TEXT}
    assert samples(records)[0].text == "ok"


def test_non_utf8_caption_in_csv_fails_only_its_row(tmp_path: Path) -> None:
    folder = tmp_path / "f"
    folder.mkdir()
    for name in ("a.png", "b.png"):
        (folder / name).write_bytes(image_bytes(0))
    (folder / "captions.csv").write_bytes(b"file_name,caption\na.png,caf\xe9\nb.png,fine\n")
    records = read_all(folder, "imagefolder")
    assert error_kinds(records) == {"f/a.png": ErrorKind.NON_UTF8_TEXT}
    assert [s.text for s in samples(records)] == ["fine"]


def test_truncated_tar_yields_what_was_read_then_one_shard_error(tmp_path: Path) -> None:
    members = [m for i in range(10) for m in wds_members(i)]
    path = write_tar(tmp_path / "cut.tar", members)
    truncate(path, path.stat().st_size // 2)

    records = read_all(path, "webdataset")
    assert isinstance(records[-1], SampleError)
    assert (records[-1].key, records[-1].stage, records[-1].error) == ("cut", Stage.READ,
                                                                       ErrorKind.UNREADABLE_SHARD)
    assert records[-1].message
    got = samples(records)
    assert 2 <= len(got) < 10
    for sample in got:  # whatever was yielded is whole
        index = int(sample.key.split("/")[1])
        if sample.image is not None:
            assert sample.image == image_bytes(index)
    assert len(errors(records)) == 1


@pytest.mark.parametrize("cut_at_member_boundary", [True, False])
def test_tar_cut_between_members_is_noticed(tmp_path: Path, cut_at_member_boundary: bool) -> None:
    """tarfile alone ends quietly when a tar stops at a header: that must not pass as complete."""
    path = write_tar(tmp_path / "b.tar", [m for i in range(4) for m in wds_members(i)])
    with tarfile.open(path) as tar:
        third = [m for m in tar.getmembers() if m.name.startswith("000000002")][0]
    truncate(path, third.offset + (0 if cut_at_member_boundary else 100))
    records = read_all(path, "webdataset")
    assert [r.key for r in records] == ["b/000000000", "b/000000001", "b"]
    assert records[-1].error == ErrorKind.UNREADABLE_SHARD


def test_truncated_gzip_tar(tmp_path: Path) -> None:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w:gz") as tar:
        for name, data in [m for i in range(6) for m in wds_members(i)]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    path = tmp_path / "z.tar.gz"
    path.write_bytes(raw.getvalue())
    complete = read_all(path, "webdataset")
    assert len(samples(complete)) == 6 and errors(complete) == []
    path.write_bytes(raw.getvalue()[: len(raw.getvalue()) * 2 // 3])
    records = read_all(path, "webdataset")
    assert records[-1].key == "z" and records[-1].error == ErrorKind.UNREADABLE_SHARD
    assert len(errors(records)) == 1


def test_corrupt_zip_is_one_shard_error(tmp_path: Path) -> None:
    path = tmp_path / "part-000009.zip"
    path.write_bytes(b"PK\x03\x04 this is not a zip at all" * 10)
    records = read_all(path, "diffusiondb")
    assert len(records) == 1
    assert (records[0].key, records[0].error) == ("part-000009", ErrorKind.UNREADABLE_SHARD)


def test_zip_with_corrupt_member_keeps_earlier_samples(tmp_path: Path) -> None:
    path = write_zip(tmp_path / "part-000010.zip", [("a.png", image_bytes(0)), ("b.png", b"B" * 200)])
    data = bytearray(path.read_bytes())
    at = data.index(b"B" * 200)
    data[at : at + 50] = b"C" * 50  # CRC no longer matches
    path.write_bytes(bytes(data))
    records = read_all(path, "diffusiondb")
    assert [r.key for r in records] == ["part-000010/a.png", "part-000010"]
    assert records[1].error == ErrorKind.UNREADABLE_SHARD and "CRC" in records[1].message


def test_corrupt_parquet_is_one_shard_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.parquet"
    path.write_bytes(b"PAR1 garbage garbage PAR1")
    records = read_all(path, "parquet")
    assert [(r.key, r.error) for r in records] == [("bad", ErrorKind.UNREADABLE_SHARD)]


def test_missing_shard_file_is_one_shard_error(tmp_path: Path) -> None:
    records = read_all(tmp_path / "gone.tar", "webdataset", shard_id="gone")
    assert [(r.key, r.error) for r in records] == [("gone", ErrorKind.UNREADABLE_SHARD)]


@pytest.mark.parametrize("fmt", sorted(PLANS))
def test_empty_shards_yield_nothing(tmp_path: Path, fmt: str) -> None:
    path = write_scenes(tmp_path / PLANS[fmt].path.format(n=0), fmt, [])
    assert read_all(path, fmt) == []


def test_empty_tar_and_zip_files(tmp_path: Path) -> None:
    assert read_all(write_tar(tmp_path / "e.tar", []), "webdataset") == []
    assert read_all(write_zip(tmp_path / "e.zip", []), "diffusiondb") == []


def test_csv_rows_pointing_outside_the_folder(tmp_path: Path) -> None:
    folder = tmp_path / "f"
    folder.mkdir()
    outside = tmp_path / "secret.png"
    outside.write_bytes(b"secret")
    (folder / "ok.png").write_bytes(image_bytes(0))
    os.symlink(outside, folder / "link.png")
    (folder / "captions.csv").write_text(
        f"file_name,caption\n../secret.png,a\n{outside},b\nlink.png,c\nok.png,d\n"
    )
    records = read_all(folder, "imagefolder")
    assert error_kinds(records) == {
        "f/../secret.png": ErrorKind.UNSAFE_MEMBER_NAME,
        f"f/{outside}": ErrorKind.UNSAFE_MEMBER_NAME,
        "f/link.png": ErrorKind.UNSAFE_MEMBER_NAME,
    }
    assert [s.key for s in samples(records)] == ["f/ok.png"]
    assert all(s.image != b"secret" for s in samples(records))


def test_duplicate_keys_become_errors_for_the_second(tmp_path: Path) -> None:
    tar = write_tar(tmp_path / "d.tar", wds_members(0, key="k") + wds_members(1) + wds_members(2, key="k"))
    records = read_all(tar, "webdataset")
    assert [r.key for r in records] == ["d/k", "d/000000001", "d/k"]
    assert isinstance(records[0], Sample) and records[0].image == image_bytes(0)
    assert records[2].error == ErrorKind.DUPLICATE_KEY

    table = pa.table({"key": ["a", "b", "a"], "jpg": pa.array([b"1", b"2", b"3"], pa.binary())})
    pq.write_table(table, tmp_path / "d.parquet")
    assert error_kinds(read_all(tmp_path / "d.parquet", "parquet")) == {"d/a": ErrorKind.DUPLICATE_KEY}

    folder = tmp_path / "df"
    folder.mkdir()
    (folder / "a.png").write_bytes(image_bytes(0))
    (folder / "captions.csv").write_text("file_name,caption\na.png,x\na.png,y\n")
    records = read_all(folder, "imagefolder")
    assert [type(r).__name__ for r in records] == ["Sample", "SampleError"]
    assert records[1].error == ErrorKind.DUPLICATE_KEY


def test_duplicate_zip_member_names(tmp_path: Path) -> None:
    with pytest.warns(UserWarning):  # zipfile itself warns about the duplicate
        path = write_zip(tmp_path / "part-000011.zip", [("a.png", image_bytes(0)), ("a.png", image_bytes(1))])
    records = read_all(path, "diffusiondb")
    assert error_kinds(records) == {"part-000011/a.png": ErrorKind.DUPLICATE_KEY}
    assert len(records) == 2


def test_oversize_member_is_refused_before_reading(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(safety, "MAX_MEMBER_BYTES", 100)
    tar = write_tar(tmp_path / "big.tar", [("a.png", b"x" * 500), ("a.txt", b"t"), ("b.png", b"y"), ("b.txt", b"u")])
    records = read_all(tar, "webdataset")
    assert error_kinds(records) == {"big/a": ErrorKind.DECOMPRESSION_BOMB}
    assert [s.key for s in samples(records)] == ["big/b"]

    zp = write_zip(tmp_path / "part-000012.zip", [("a.png", b"x" * 500)])
    assert error_kinds(read_all(zp, "diffusiondb")) == {"part-000012/a.png": ErrorKind.DECOMPRESSION_BOMB}


def test_records_account_for_every_member(tmp_path: Path) -> None:
    """in = out + errors: a shard with good and bad groups gives one record per group."""
    members = (wds_members(0) + [("../x.txt", b"")] + wds_members(1, caption=b"\xff")
               + wds_members(2) + wds_members(0))
    records = read_all(write_tar(tmp_path / "n.tar", members), "webdataset")
    assert len(records) == 5
    assert len(samples(records)) == 2 and len(errors(records)) == 3


def test_guard_turns_read_failures_into_an_error_but_keeps_bugs_loud() -> None:
    def broken():
        yield Sample("s/a", b"i", "t")
        raise OSError("disk gone")

    records = list(guard_records("s", broken()))
    assert [r.key for r in records] == ["s/a", "s"] and records[1].message == "disk gone"

    def buggy():
        yield Sample("s/a", b"i", "t")
        raise TypeError("a bug")

    with pytest.raises(TypeError):
        list(guard_records("s", buggy()))


def test_guard_refuses_unsafe_member_in_any_key() -> None:
    records = list(guard_records("s", [Sample("s/../../etc", b"i", "t"), Sample("s/ok", b"i", "t")]))
    assert records[0].error == ErrorKind.UNSAFE_MEMBER_NAME and isinstance(records[1], Sample)


def test_writers_refuse_unsafe_members(tmp_path: Path) -> None:
    scene = render_scene(0, size=32)
    for fmt in sorted(PLANS):
        from curate.io.formats.registry import WRITERS

        with pytest.raises(ValueError, match="climbs out"):
            with WRITERS[fmt](tmp_path / PLANS[fmt].path.format(n=3)) as writer:
                writer.write(Sample("s/../../escape", scene.image, "t"))
    assert not any(p.name.startswith("escape") for p in tmp_path.rglob("*"))
    assert not (tmp_path.parent / "escape.png").exists()
