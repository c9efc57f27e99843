"""URLs as paths: recognising them, expanding shard lists, atomic uploads, clear refusals."""

from __future__ import annotations

import importlib.util
import os
import pickle
from pathlib import Path

import fsspec
import pytest

from curate.errors import CurateError
from curate.io.atomic import write_json_atomic
from curate.io.formats.detect import find_shards
from curate.io.formats.registry import sidecars_of
from curate.io.location import RemotePath, expand, location, unfold
from curate.io.mirror import ShardMirror
from curate.schemas.config.flow import FilterConfig, ScoreConfig, StatsConfig


@pytest.fixture
def memory_bucket():
    fs = fsspec.filesystem("memory")
    yield RemotePath("memory://test-remote"), fs
    if fs.exists("/test-remote"):
        fs.rm("/test-remote", recursive=True)


@pytest.mark.parametrize("typed, url", [
    ("s3://bucket/laion/00000.tar", "s3://bucket/laion/00000.tar"),
    (Path("s3://bucket/laion/"), "s3://bucket/laion"),  # pathlib folded '//'
    (Path("file:///data/run"), "file:///data/run"),
    ("hf://datasets/org/name/data", "hf://datasets/org/name/data"),
])
def test_urls_become_remote_paths_even_after_pathlib_folded_them(typed, url):
    got = location(typed)
    assert isinstance(got, RemotePath) and got.url == url


@pytest.mark.parametrize("typed", ["runs/r1", "/data/shards", Path("C:/data"), "./s3:bucket"])
def test_local_paths_stay_paths(typed):
    assert isinstance(location(typed), Path)


def test_unfold_leaves_whole_urls_alone():
    assert unfold("gs://b/k") == "gs://b/k" and unfold("file:///x") == "file:///x" and unfold("gs:/b/k") == "gs://b/k"


def test_remote_path_names_like_pathlib():
    path = RemotePath("s3://b/laion/part-000001.tar.gz")
    assert (path.name, path.stem, path.suffix) == ("part-000001.tar.gz", "part-000001.tar", ".gz")
    assert path.parent == RemotePath("s3://b/laion") and path.parent / "x.json" == RemotePath("s3://b/laion/x.json")
    assert path.with_name("y").url == "s3://b/laion/y"
    assert path.relative_to(RemotePath("s3://b")).as_posix() == "laion/part-000001.tar.gz"


def test_a_remote_path_pickles_as_its_url_alone(memory_bucket):
    root, fs = memory_bucket
    fs.pipe(f"{root.path}/a.txt", b"x")
    child = next(root.iterdir())
    child.fs  # noqa: B018 - builds the filesystem
    copy = pickle.loads(pickle.dumps(child))
    assert copy == child and copy._fs is None and copy.is_file() and copy.read_bytes() == b"x"


def test_brace_ranges_keep_zero_padding_and_lists_expand_in_order(memory_bucket):
    root, fs = memory_bucket
    urls = [p.url for p in expand(RemotePath(f"{root}/{{00008..00011}}.tar"))]
    assert urls == [f"{root}/{n}.tar" for n in ("00008", "00009", "00010", "00011")]
    assert [p.name for p in expand(RemotePath(f"{root}/{{b,a}}-{{1..2}}"))] == ["b-1", "b-2", "a-1", "a-2"]
    assert expand(Path("local/{0..3}.tar")) == [Path("local/{0..3}.tar")]  # the shell's business


def test_globs_in_urls_list_the_store_and_an_empty_match_is_refused(memory_bucket):
    root, fs = memory_bucket
    for name in ("b/2.tar", "b/1.tar", "b/notes.txt", "c/3.tar"):
        fs.pipe(f"{root.path}/{name}", b"")
    assert [p.url for p in expand(RemotePath(f"{root}/*/*.tar"))] == \
        [f"{root}/b/1.tar", f"{root}/b/2.tar", f"{root}/c/3.tar"]
    with pytest.raises(CurateError, match="No files match"):
        expand(RemotePath(f"{root}/*/*.zip"))


def test_a_missing_url_input_is_refused_in_one_line(memory_bucket):
    root, _ = memory_bucket
    with pytest.raises(CurateError, match=f"Input path {root}/nothing does not exist"):
        find_shards([f"{root}/nothing"])


@pytest.mark.skipif(importlib.util.find_spec("s3fs") is not None, reason="s3fs is installed here")
def test_a_scheme_without_its_fsspec_package_names_the_package():
    with pytest.raises(CurateError, match=r"s3fs.*pip install 'curate\[s3\]'"):
        find_shards(["s3://bucket/laion/"])


def test_an_unknown_scheme_is_refused_in_one_line():
    with pytest.raises(CurateError, match="nosuch://b/x is not a URL any installed fsspec filesystem serves"):
        find_shards(["nosuch://b/x"])


@pytest.mark.parametrize("make", [
    lambda url, tmp: StatsConfig(run_dir=Path(url)),
    lambda url, tmp: FilterConfig(run_dir=tmp, out=Path(url)),
    lambda url, tmp: ScoreConfig(inputs=(tmp,), projection=Path(url), out=tmp),
])
def test_commands_that_work_on_local_folders_refuse_urls_in_one_line(make, tmp_path):
    with pytest.raises(CurateError, match=r"s3://b/r is a URL; only `curate embed` and `curate score`"):
        make("s3://b/r", tmp_path).validate()


def test_file_urls_are_written_under_a_hidden_name_then_renamed(tmp_path):
    target = location(f"file://{tmp_path}/run/card.json")
    write_json_atomic(target, {"a": 1})
    assert [p.name for p in (tmp_path / "run").iterdir()] == ["card.json"]
    assert (tmp_path / "run" / "card.json").read_text().strip().startswith("{")


def test_a_mirror_copies_a_remote_shard_with_its_sidecars_and_removes_it(memory_bucket, same_scenes):
    root, fs = memory_bucket
    local_zip = same_scenes["diffusiondb"]
    fs.put(str(local_zip.parent) + "/", f"{root.path}/ddb/", recursive=True)
    [shard] = find_shards([f"{root}/ddb"])
    mirror = ShardMirror(sidecars_of)
    with mirror.local(shard) as copy:
        assert isinstance(copy.path, Path) and copy.path.read_bytes() == local_zip.read_bytes()
        assert (copy.path.parent / "metadata.parquet").is_file() == (local_zip.parent / "metadata.parquet").is_file()
    assert not copy.path.exists()
    mirror.close()
    assert mirror.root is None and not copy.path.parent.exists()


def test_scratch_left_by_dead_processes_is_swept_and_live_ones_kept(tmp_path):
    import subprocess
    import sys

    from curate.io.scratch import sweep_dead

    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead, live = tmp_path / gone.stdout.strip(), tmp_path / str(os.getpid())
    for folder in (dead, live):
        (folder / "mirror-x").mkdir(parents=True)
        (folder / "mirror-x" / "00001.tar").write_bytes(b"copy")
    assert sweep_dead(tmp_path) == 1
    assert not dead.exists() and (live / "mirror-x" / "00001.tar").exists()


def test_a_prefetched_shard_is_copied_once_in_the_background(memory_bucket, same_scenes, monkeypatch):
    import curate.io.mirror as mirror_module

    root, fs = memory_bucket
    fs.put(str(same_scenes["webdataset"]), f"{root.path}/wds/00002.tar")
    [shard] = find_shards([f"{root}/wds"])
    copies = []
    real = mirror_module.download
    monkeypatch.setattr(mirror_module, "download", lambda src, dst: (copies.append(src.url), real(src, dst)))
    with ShardMirror() as mirror:
        mirror.prefetch(shard)
        mirror.prefetch(shard)  # told twice: still one copy
        with mirror.local(shard) as copy:
            assert copy.path.read_bytes() == same_scenes["webdataset"].read_bytes()
        mirror.prefetch(find_shards([same_scenes["webdataset"]])[0])  # a local shard: nothing to copy
    assert copies == [shard.path.url]


def test_io_map_keeps_order_overlaps_remote_round_trips_and_raises_the_first_error():
    import threading

    from curate.io.location import io_map

    together = threading.Barrier(4, timeout=10)  # passes only if 4 calls wait at once

    def round_trip(n: int) -> tuple[int, str]:
        together.wait()
        return n * n, threading.current_thread().name

    remote = io_map(round_trip, list(range(8)), remote=True)
    assert [r[0] for r in remote] == [n * n for n in range(8)]
    assert all(r[1].startswith("curate-io") for r in remote)
    here = io_map(lambda n: threading.current_thread().name, [1, 2], remote=False)
    assert set(here) == {threading.current_thread().name}
    with pytest.raises(ZeroDivisionError):
        io_map(lambda n: 1 / n, [1, 0, 2], remote=True)
