"""`filter`'s fast copies (Arrow for Parquet/Arrow sources to Parquet, members read in place for
tar to tar) write the very bytes the sample-by-sample copy writes, on every input format.

Each case filters one scored run twice into the same output format: once as `filter` runs
(the registered fast ways), once with the registry emptied (every shard sample by sample),
and the two subset folders must be identical file for file, byte for byte. The tar writer's
member time is pinned so that two runs can agree to the byte; a spy checks the fast way was
really taken where one is registered.
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from curate.errors import CurateError
from curate.io.formats import columnar_select, webdataset
from curate.io.formats.detect import find_shards, reader_for
from curate.pipelines.filter import run_filter
from curate.schemas.config.flow import FilterConfig
from curate.schemas.layout import RunLayout
from curate.schemas.manifest import read_manifest
from curate.subsets import copying
from curate.subsets.output import ShardRoller
from tests.fixtures import add_tar_link, image_bytes, wds_members, write_tar
from tests.pipelines.fake_scores import score_shards

OUTPUT_FORMATS = ("parquet", "webdataset", "imagefolder")
FAST = {"parquet": copying.ColumnarCopy, "webdataset": copying.TarCopy}
CRITERIA = [dict(min_sim=-0.2), dict(top_fraction=0.4), dict(where="text LIKE '%a%'", max_sim=0.7), {}]


@pytest.fixture(autouse=True)
def pinned_tar_time(monkeypatch):
    monkeypatch.setattr(webdataset, "member_mtime", lambda: 1_700_000_000)


def files_of(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def filter_both_ways(run: Path, out: Path, monkeypatch, **options) -> tuple[dict, dict, int]:
    """The subset's files from the fast ways and from the sample-by-sample way, and how many
    shards a fast way copied."""
    taken = []
    for way in FAST.values():
        monkeypatch.setattr(way, "copy", _spy(way.copy, taken))
    run_filter(FilterConfig(run_dir=run, out=out / "fast", **options), quiet=True)
    with monkeypatch.context() as patch:
        patch.setattr(copying, "COPIES", {})
        run_filter(FilterConfig(run_dir=run, out=out / "samples", **options), quiet=True)
    return files_of(out / "fast"), files_of(out / "samples"), len(taken)


def _spy(copy, taken: list):
    def spied(self, *args, **kwargs):
        taken.append(type(self).__name__)
        return copy(self, *args, **kwargs)
    return spied


def hf_shards(folder: Path) -> list[Path]:
    """What `datasets` writes: a Parquet shard with `Image()` structs (one stored as a path only)
    and a `save_to_disk` folder (Arrow IPC)."""
    datasets = pytest.importorskip("datasets")
    folder.mkdir(parents=True)
    (folder / "on-disk.png").write_bytes(image_bytes(40))
    images = [{"bytes": image_bytes(41 + i), "path": None} for i in range(6)]
    hub = datasets.Dataset.from_dict({"image": images, "caption": [f"a hub caption {i}" for i in range(6)],
                                      "rank": list(range(6)), "file_name": ["clash.png"] * 6})
    hub.cast_column("image", datasets.Image()).to_parquet(str(folder / "hub-0000.parquet"))
    table = pq.read_table(folder / "hub-0000.parquet")  # one image stored as a path beside the shard
    stored = table.column("image").to_pylist()
    stored[4] = {"bytes": None, "path": "on-disk.png"}
    column = pa.array(stored, table.schema.field("image").type)
    pq.write_table(table.set_column(0, table.schema.field("image"), column), folder / "hub-0000.parquet")
    saved = datasets.Dataset.from_dict({"image": [{"bytes": image_bytes(50 + i), "path": f"{i}.png"} for i in range(6)],
                                        "text": [f"a saved caption {i}" for i in range(6)],
                                        "aesthetic": [5.0 + i for i in range(6)]})
    saved.cast_column("image", datasets.Image()).save_to_disk(str(folder / "saved"))
    return [folder / "hub-0000.parquet", folder / "saved"]


def awkward_parquet(folder: Path) -> list[Path]:
    """Keys the reader must name as it does: a repeated key, null and empty keys (the row index
    names them), integer keys, a key that is not safe to write, text typed as large strings, a
    dictionary column, meta types two shards disagree on, small row groups."""
    folder.mkdir(parents=True)
    keys = ["k0", "k1", "k1", None, "", "k5", "../k6", "k7", "k8", "k9"]
    rows = len(keys)
    first = pa.table({
        "key": keys, "jpg": [image_bytes(60 + i, image_format="JPEG") for i in range(rows)],
        "caption": pa.array([f"an awkward caption {i}" for i in range(rows)], pa.large_string()),
        "width": pa.array(range(rows), pa.int32()), "flag": [i % 2 == 0 for i in range(rows)],
        "label": pa.array([f"l{i % 3}" for i in range(rows)]).dictionary_encode(),
        "score": pa.array([0.5 + i for i in range(rows)], pa.float32()), "similarity": [0.1] * rows})
    pq.write_table(first, folder / "awkward-a.parquet", row_group_size=3)
    second = pa.table({
        "key": pa.array(range(100, 106), pa.int64()), "png": [image_bytes(70 + i) for i in range(6)],
        "caption": [f"integer keyed caption {i}" for i in range(6)],
        "width": ["wide", None, "narrow", "x", "y", "z"], "flag": ["yes", "no", None, "a", "b", "c"],
        "score": [1.0, 2.0, None, 4.0, 5.0, 6.0]})
    pq.write_table(second, folder / "awkward-b.parquet", row_group_size=4)
    return [folder / "awkward-a.parquet", folder / "awkward-b.parquet"]


def awkward_tars(folder: Path) -> list[Path]:
    """A key given twice (not adjacent), a symlink member, a sample in a subfolder, a folder entry,
    a long (pax) name in one tar, and a gzip tar: the last two are read by `tarfile`."""
    folder.mkdir(parents=True)
    members = [m for i in range(6) for m in wds_members(i, meta={"url": f"u{i}", "width": i})]
    members += wds_members(1, meta={"url": "again"})  # the key again: a duplicate
    members += [(f"sub/{m[0]}", m[1]) for m in wds_members(7, meta={"width": 7})]
    plain = add_tar_link(write_tar(folder / "awk-00001.tar", members), "000000009.png", "elsewhere")
    long_name = write_tar(folder / "awk-00002.tar", wds_members(20, key="x" * 120, meta={"width": 1})
                          + [m for i in range(21, 24) for m in wds_members(i, meta={"width": i})])
    import gzip
    gz = folder / "awk-00003.tar.gz"
    gz.write_bytes(gzip.compress(write_tar(folder / "plain3.tar", [m for i in range(30, 34)
                                                                  for m in wds_members(i)]).read_bytes(), mtime=0))
    (folder / "plain3.tar").unlink()
    return [plain, long_name, gz]


@pytest.fixture(scope="module")
def mixed_run(sample_shards, tmp_path_factory) -> Path:
    """One scored run over every input format, hand-made awkward shards among them."""
    root = tmp_path_factory.mktemp("copy-mixed")
    inputs = [*sample_shards, *hf_shards(root / "hf"), *awkward_parquet(root / "pq"), *awkward_tars(root / "tars")]
    return score_shards(inputs, root / "run").root


@pytest.mark.parametrize("fmt", OUTPUT_FORMATS)
@pytest.mark.parametrize("options", CRITERIA, ids=["min-sim", "top-fraction", "where", "all"])
def test_fast_ways_write_the_bytes_the_sample_way_writes(mixed_run, tmp_path, monkeypatch, fmt, options):
    fast, samples, taken = filter_both_ways(mixed_run, tmp_path, monkeypatch, format=fmt, shard_size=7, **options)

    assert fast == samples and len(fast) > 2
    assert (taken > 0) == (fmt in FAST)  # the fast way really ran where one is registered
    kept = read_manifest(tmp_path / "fast").counts.kept
    assert 0 < kept <= read_manifest(tmp_path / "fast").counts.scored


def test_every_registered_pair_has_a_way_for_these_inputs(mixed_run):
    """Parquet, Arrow and plain tars go the fast way; zips, folders, pax and gzip tars do not."""
    chosen = {}
    for shard in find_shards([Path(p) for p in _sources(mixed_run)]):
        reader = reader_for(shard)
        out = "webdataset" if shard.format == "webdataset" else "parquet"
        chosen[shard.path.name] = type(copying.copy_for(reader, out)).__name__
    assert chosen["hub-0000.parquet"] == chosen["awkward-a.parquet"] == "ColumnarCopy"
    assert any(name.endswith(".arrow") and way == "ColumnarCopy" for name, way in chosen.items())
    assert chosen["awk-00001.tar"] == chosen["awk-00003.tar.gz"] == "TarCopy"  # it leaves gzip to tarfile
    assert chosen["part-000001.zip"] == "SampleCopy"


def _sources(run: Path) -> list[str]:
    from curate.schemas.tables import read_scores_info

    return [read_scores_info(pq.read_schema(p)).source for p in RunLayout(run).shard_files("scores")]


def test_awkward_keys_are_named_and_kept_as_the_reader_names_them(mixed_run, tmp_path, monkeypatch):
    fast, _, _ = filter_both_ways(mixed_run, tmp_path, monkeypatch, format="parquet", shard_size=1000)
    table = pq.read_table(tmp_path / "fast" / "00000.parquet")
    keys = set(table.column("source_key").to_pylist())
    assert {"awkward-a/k1", "awkward-a/000003", "awkward-a/000004", "awkward-b/100"} <= keys
    assert not any("k6" in k for k in keys)  # `../k6` is the reader's unsafe-name error, never a sample
    k1 = table.filter(pc.equal(table.column("source_key"), "awkward-a/k1"))
    assert k1.num_rows == 1 and k1.column("caption")[0].as_py() == "an awkward caption 1"  # the first k1
    assert table.schema.field("width").type == pa.string()  # int32 here, text there: text
    assert "similarity_from_source" in table.column_names and "file_name_from_source" in table.column_names


def test_row_groups_without_a_kept_row_are_not_read(tmp_path, monkeypatch):
    rows = 64
    pq.write_table(pa.table({"key": [f"r{i:03d}" for i in range(rows)],
                             "jpg": [image_bytes(i % 5, image_format="JPEG") for i in range(rows)],
                             "caption": [f"caption {i}" for i in range(rows)]}),
                   tmp_path / "groups.parquet", row_group_size=8)
    run = score_shards([tmp_path / "groups.parquet"], tmp_path / "run")
    read_groups = []
    iter_batches = pq.ParquetFile.iter_batches

    def counted(self, *args, row_groups=None, **kwargs):
        read_groups.extend(row_groups or [])
        return iter_batches(self, *args, row_groups=row_groups, **kwargs)

    monkeypatch.setattr(pq.ParquetFile, "iter_batches", counted)
    summary = run_filter(FilterConfig(run_dir=run.root, out=tmp_path / "sub", top_fraction=0.05), quiet=True)
    assert summary.manifest.counts.kept == 4
    assert 0 < len(set(read_groups)) <= 4 < rows // 8


@pytest.mark.parametrize("fmt", ["parquet", "webdataset"])
def test_interrupted_fast_copy_resumes_to_the_same_files(mixed_run, tmp_path, monkeypatch, fmt):
    whole = tmp_path / "whole"
    run_filter(FilterConfig(run_dir=mixed_run, out=whole, format=fmt, shard_size=5), quiet=True)
    out = tmp_path / "sub"
    batch, write = ShardRoller.write_batch, ShardRoller.write

    def killed(method):
        def dying(self, *args):
            if self.index >= 23:
                raise KeyboardInterrupt
            return method(self, *args)
        return dying

    with monkeypatch.context() as patch:
        patch.setattr(ShardRoller, "write_batch", killed(batch))
        patch.setattr(ShardRoller, "write", killed(write))
        with pytest.raises(KeyboardInterrupt):
            run_filter(FilterConfig(run_dir=mixed_run, out=out, format=fmt, shard_size=5), quiet=True)
    assert not (out / "manifest.json").exists() and len([p for p in out.iterdir() if p.name[0] != "."]) >= 2

    summary = run_filter(FilterConfig(run_dir=mixed_run, out=out, format=fmt, shard_size=5), quiet=True)

    assert summary.reused_outputs >= 2
    assert files_of(out) == files_of(whole)


def test_a_source_that_breaks_part_way_goes_on_sample_by_sample(mixed_run, tmp_path, monkeypatch):
    """A fast way that fails after writing some rows leaves the rest to the reader: same files."""
    run_filter(FilterConfig(run_dir=mixed_run, out=tmp_path / "reference", shard_size=4), quiet=True)
    select = columnar_select.select_rows

    def breaks_after_one_batch(reader, wanted):
        rows = select(reader, wanted)
        first = next(rows, None)
        if first is not None and len(first) > 1:
            yield first.slice(0, len(first) - 1)
            raise OSError("the disk went away")
        if first is not None:
            yield first

    monkeypatch.setattr(copying, "select_rows", breaks_after_one_batch)
    run_filter(FilterConfig(run_dir=mixed_run, out=tmp_path / "broken", shard_size=4), quiet=True)
    assert files_of(tmp_path / "broken") == files_of(tmp_path / "reference")


@pytest.mark.parametrize("fmt", ["parquet", "webdataset"])
def test_kept_pairs_missing_from_a_changed_source_are_refused_alike(tmp_path, fmt):
    if fmt == "parquet":
        source = tmp_path / "changing.parquet"
        pq.write_table(pa.table({"key": ["a", "b", "c"], "jpg": [image_bytes(i) for i in range(3)],
                                 "caption": ["one", "two", "three"]}), source)
    else:
        source = write_tar(tmp_path / "00005.tar", [m for i in range(3) for m in wds_members(i)])
    run = score_shards([source], tmp_path / "run")
    if fmt == "parquet":
        pq.write_table(pq.read_table(source).slice(0, 1), source)
    else:
        write_tar(source, wds_members(0))
    with pytest.raises(CurateError, match="2 kept pairs .* no longer in its source"):
        run_filter(FilterConfig(run_dir=run.root, out=tmp_path / "sub", format=fmt), quiet=True)


def test_tar_members_are_copied_untouched(mixed_run, tmp_path, monkeypatch):
    """Image and caption bytes of a tar-to-tar subset are the source members' bytes."""
    import tarfile

    filter_both_ways(mixed_run, tmp_path, monkeypatch, format="webdataset", shard_size=1000)
    (source,) = [s for s in _sources(mixed_run) if s.endswith("awk-00001.tar")]
    with tarfile.open(source) as tar:
        original = {m.name: tar.extractfile(m).read() for m in tar if m.isfile()}
    with tarfile.open(tmp_path / "fast" / "00000.tar") as tar:
        written = {m.name: tar.extractfile(m).read() for m in tar if m.isfile()}
    checked = 0
    for name, data in written.items():
        if not name.endswith(".json"):
            continue
        source_key = json.loads(data)["source_key"]
        if not source_key.startswith("awk-00001/"):
            continue
        stem, member = name[: -len(".json")], source_key.split("/", 1)[1]
        assert written[f"{stem}.png"] == original[f"{member}.png"]
        assert written[f"{stem}.txt"] == original[f"{member}.txt"]
        checked += 1
    assert checked >= 3
