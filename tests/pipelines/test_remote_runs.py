"""`embed` and `score` with URL inputs and outputs (fsspec's in-memory store): same files as local.

The `memory://` store lives in this process, so a test that used a local path by mistake
would not find its files there; the Ray executor's URL test (separate processes) uses
`file://` URLs instead (tests/runtime/test_ray_executor.py).
"""

from __future__ import annotations

from pathlib import Path

import fsspec
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from curate.io.location import RemotePath, location
from curate.io.tables import ParquetTableWriter
from curate.pipelines.embed import run_embed
from curate.pipelines.score import run_score
from curate.schemas.config.flow import EmbedConfig, ScoreConfig
from curate.schemas.layout import RunLayout
from curate.schemas.outcome import StepOutcome
from curate.schemas.tables import read_embeddings_info, read_scores_info
from tests.pipelines.scene_runs import tiny_projection

BUCKET = "memory://curate-remote-runs"


def read(path: Path | RemotePath) -> pa.Table:
    if isinstance(path, RemotePath):
        with path.open("rb") as handle:
            return pq.read_table(handle)
    return pq.read_table(path)


def files_below(root: Path | RemotePath) -> list[str]:
    """Every file of a run as relative names, hidden temporaries included."""
    if isinstance(root, RemotePath):
        return sorted(RemotePath(f"memory://{p.lstrip('/')}").relative_to(root).as_posix()
                      for p in root.fs.find(root.path))
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def assert_same_tables(got: RunLayout, want: RunLayout, table: str) -> None:
    """Same rows, same columns and types; metadata may differ only where it names locations."""
    for path in want.shard_files(table):
        a, b = read(got.table_path(table, path.stem)), read(path)
        assert a.schema.equals(b.schema, check_metadata=False), path.stem
        assert a.drop_columns([c for c in a.column_names if c.endswith("_emb")]).equals(
            b.drop_columns([c for c in b.column_names if c.endswith("_emb")])), path.stem
        for column in (c for c in b.column_names if c.endswith("_emb")):
            np.testing.assert_array_equal(np.stack(a.column(column).to_numpy(zero_copy_only=False)),
                                          np.stack(b.column(column).to_numpy(zero_copy_only=False)))


@pytest.fixture(scope="module")
def bucket(sample_shards) -> RemotePath:
    """The sample shards (every format, DiffusionDB's metadata.parquet included) in a memory bucket."""
    fs = fsspec.filesystem("memory")
    root = RemotePath(BUCKET)
    fs.put(str(Path(sample_shards[0]).parents[1]) + "/", f"{root.path}/in/", recursive=True)
    yield root
    fs.rm(root.path, recursive=True)


@pytest.fixture(scope="module")
def local_run(sample_shards, tiny_encoders, tmp_path_factory) -> tuple[RunLayout, StepOutcome]:
    out = tmp_path_factory.mktemp("local") / "run"
    config = EmbedConfig(inputs=tuple(sample_shards), out=out, encoders=tiny_encoders, batch_size=3, workers=0)
    return RunLayout(out), run_embed(config, quiet=True)


@pytest.fixture(scope="module")
def remote_run(bucket, tiny_encoders) -> tuple[RunLayout, StepOutcome]:
    config = EmbedConfig(inputs=(f"{bucket}/in",), out=f"{bucket}/run", encoders=tiny_encoders, batch_size=3,
                         workers=0)
    out = location(config.out)
    assert isinstance(out, RemotePath)
    return RunLayout(out), run_embed(config, quiet=True)


def test_embed_from_and_to_urls_writes_what_a_local_run_writes(remote_run, local_run, bucket):
    (got, summary), (want, local_summary) = remote_run, local_run
    assert files_below(got.root) == files_below(want.root)  # no temporaries left either
    assert [(s.shard_id, s.pairs, s.errors) for s in summary.shards] == \
        [(s.shard_id, s.pairs, s.errors) for s in local_summary.shards]
    assert summary.pairs == local_summary.pairs == 4 * 8
    assert_same_tables(got, want, "embeddings")
    assert_same_tables(got, want, "errors")


def test_embeddings_name_the_url_they_were_read_from(remote_run, local_run, bucket):
    (got, _), (want, _) = remote_run, local_run
    for path in want.shard_files("embeddings"):
        remote = read_embeddings_info(read(got.embeddings(path.stem)).schema)
        local = read_embeddings_info(pq.read_schema(path))
        assert remote.source.startswith(f"{bucket}/in/") and remote.source.endswith(Path(local.source).name)
        assert (remote.format, remote.image_encoder, remote.text_encoder) == \
            (local.format, local.image_encoder, local.text_encoder)


def test_a_rerun_on_a_url_run_skips_every_finished_shard(remote_run, bucket, tiny_encoders, monkeypatch):
    monkeypatch.setattr("curate.pipelines.embed.EmbedWorker", None)  # any shard left to do would need one
    again = run_embed(EmbedConfig(inputs=(f"{bucket}/in",), out=f"{bucket}/run", encoders=tiny_encoders), quiet=True)
    assert len(again.shards) == 4 and all(s.skipped for s in again.shards)


def test_brace_ranges_and_globs_in_urls_pick_the_shards(remote_run, bucket, tiny_encoders):
    config = EmbedConfig(inputs=(f"{bucket}/in/{{webdataset,parquet}}/*",), out=f"{bucket}/picked",
                         encoders=tiny_encoders, batch_size=3, workers=0)
    summary = run_embed(config, quiet=True)
    assert sorted(s.shard_id for s in summary.shards) == ["00001", "scenes-00001"]


@pytest.fixture(scope="module")
def projection(local_run, tmp_path_factory) -> Path:
    return tiny_projection(local_run[0].root, tmp_path_factory.mktemp("projection") / "proj")


@pytest.mark.parametrize("inputs", ["run", "in"])
def test_score_reads_and_writes_urls_like_local_folders(inputs, remote_run, local_run, projection, bucket,
                                                       tmp_path, monkeypatch):
    """A URL run dir, or the URL shards already embedded there, score exactly as locally, no encoder loaded."""
    want = RunLayout(tmp_path / "local")
    run_score(ScoreConfig(inputs=(local_run[0].root,), projection=projection, out=want.root, device="cpu",
                          workers=0), quiet=True)
    monkeypatch.setattr("curate.pipelines.embed.load_encoders", None)  # the URL run holds every shard's vectors
    got = RunLayout(RemotePath(f"{bucket}/run"))
    summary = run_score(ScoreConfig(inputs=(f"{bucket}/{inputs}",), projection=projection, out=f"{bucket}/run",
                                    device="cpu", workers=0, overwrite=True), quiet=True)
    assert summary.rows == 32 and [p.name for p in got.shard_files("scores")] == \
        [p.name for p in want.shard_files("scores")]
    assert_same_tables(got, want, "scores")
    for path in want.shard_files("scores"):
        info = read_scores_info(read(got.scores(path.stem)).schema)
        assert info.source.startswith(f"{bucket}/in/")


def test_an_unfinished_upload_leaves_nothing_at_the_url(bucket):
    target = RemotePath(f"{bucket}/partial/embeddings/x.parquet")
    schema = pa.schema([("key", pa.string())])
    writer = ParquetTableWriter(target, schema)
    writer.write_rows({"key": ["a", "b"]})
    assert not target.exists()  # written locally first
    writer.abort()
    assert not target.exists() and not writer.tmp.exists()
    with ParquetTableWriter(target, schema) as done:
        done.write_rows({"key": ["a"]})
    assert read(target).column("key").to_pylist() == ["a"] and not done.tmp.exists()


def subset_pairs(folder: Path) -> dict[str, tuple[bytes, str]]:
    from curate.io.formats.detect import find_shards, reader_for

    return {s.key: (s.image, s.text) for shard in find_shards([folder]) for s in reader_for(shard)}


def test_filter_on_a_synced_url_run_copies_the_kept_pairs_from_their_urls(remote_run, local_run, projection,
                                                                          bucket, tmp_path):
    """The later commands take a local copy of a URL run; its sources stay URLs and are fetched."""
    from curate.pipelines.filter import run_filter
    from curate.schemas.config.flow import FilterConfig

    runs = {"local": local_run[0].root, "url": f"{bucket}/run"}
    subsets = {}
    for name, run in runs.items():
        run_score(ScoreConfig(inputs=(run,), projection=projection, out=run, device="cpu", workers=0), quiet=True)
    synced = tmp_path / "synced"
    RemotePath(f"{bucket}/run").fs.get(f"{RemotePath(runs['url']).path}/", f"{synced}/", recursive=True)
    for name, run in (("local", runs["local"]), ("url", synced)):
        subsets[name] = run_filter(FilterConfig(run_dir=run, out=tmp_path / f"subset-{name}", top_fraction=0.5),
                                   quiet=True)
    assert subsets["url"].manifest.counts == subsets["local"].manifest.counts
    got, want = subset_pairs(tmp_path / "subset-url"), subset_pairs(tmp_path / "subset-local")
    assert len(want) == 16 and got == want
