"""Item 7: careless input gets one line and exit 2 before work starts; a disk that fills or
refuses writes gets one line too, with finished shards intact and a rerun resuming."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import subprocess
from pathlib import Path
from typing import Iterator

import pyarrow.parquet as pq
import pytest

from curate.io import run_lock
from curate.io.tables import ParquetTableWriter
from tests.fixtures import wds_members, write_tar
from tests.hostile.conftest import assert_one_line_error, files_under, invoke


def small_shards(folder: Path, count: int) -> Path:
    """`count` webdataset shards of 2 pairs each."""
    folder.mkdir(parents=True, exist_ok=True)
    for k in range(count):
        write_tar(folder / f"{k:05d}.tar", wds_members(2 * k) + wds_members(2 * k + 1))
    return folder


def embed_args(tiny_models, *extra) -> list:
    return ["--image-model", tiny_models[0], "--text-model", tiny_models[1], "--device", "cpu", "--workers", "0",
            "-q", *extra]


CARELESS = [
    pytest.param(["index", "{run}", "--projection", "{tmp}/p", "--max-index-memory", "1" * 400], "--max-index-memory",
                 id="400-digit-size"),
    pytest.param(["train", "{run}", "--out", "{tmp}/proj", "--weight-decay", "nan"],
                 "--weight-decay must be a finite number", id="weight-decay-nan"),
    pytest.param(["train", "{run}", "--out", "{tmp}/proj", "--lr", "inf"], "--lr must be a finite number",
                 id="lr-inf"),
    pytest.param(["sql", "{run}", "SELECT 1", "--max-rows", "-1"], "--max-rows must be at least 0", id="max-rows"),
    pytest.param(["stats", "{run}", "--bins", "100000000"], "--bins must lie in [1, 10000]", id="bins"),
    pytest.param(["stats", "{run}", "--bins", "1e8"], "--bins", id="bins-not-an-integer"),
    pytest.param(["search", "{run}", "--text", "x", "-k", "1000000000000"], "-k must lie in", id="k"),
    pytest.param(["dedup", "{run}", "--neighbours", "100000000"], "--neighbours must lie in", id="neighbours"),
    pytest.param(["filter", "{run}", "--out", "{file}"], "is a file", id="filter-out-is-a-file"),
    pytest.param(["train", "{run}", "--out", "{file}"], "is a file", id="train-out-is-a-file"),
    pytest.param(["embed", "{shards}", "--out", "{file}"], "is a file", id="embed-out-is-a-file"),
    pytest.param(["embed", "{shards}", "--out", "{file}/run"], "cannot be created", id="embed-out-under-a-file"),
    pytest.param(["embed", "{shards}", "--out", "{tmp}/run", "--max-batch-bytes", "0"], "--max-batch-bytes",
                 id="batch-bytes"),
    pytest.param(["statz", "{run}"], "No such command", id="unknown-command"),
    pytest.param(["stats"], "Missing argument", id="missing-argument"),
]


@pytest.fixture(scope="module")
def trainable_run(tmp_path_factory) -> Path:
    """A run with embeddings and scores (synthetic vectors): what train, sql and stats need."""
    from curate.schemas.layout import RunLayout
    from curate.synthetic.vectors import write_synthetic_run
    from tests.pipelines.fake_scores import score_embeddings

    run = tmp_path_factory.mktemp("careless") / "run"
    write_synthetic_run(run, rows=64, dim=8, shards=2, clusters=4)
    score_embeddings(RunLayout(run))
    return run


@pytest.mark.parametrize("args, says", CARELESS)
def test_careless_input_is_one_line_and_exit_2_before_work(trainable_run, tmp_path, tiny_models, args, says):
    file = tmp_path / "a-file"
    file.write_text("not a folder")
    shards = small_shards(tmp_path / "shards", 1)
    filled = [a.format(run=trainable_run, tmp=tmp_path, file=file, shards=shards) for a in args]
    if filled[0] == "embed":
        filled += embed_args(tiny_models)
    before = files_under(tmp_path) | files_under(trainable_run)
    assert_one_line_error(invoke(*filled), says)
    assert files_under(tmp_path) | files_under(trainable_run) == before, "nothing written"


def test_max_text_tokens_above_the_models_positions_is_refused_before_any_shard(tmp_path, tiny_models):
    """The tiny BERT has 128 positions: 200 would die on the first long caption."""
    shards = small_shards(tmp_path / "shards", 1)
    result = invoke("embed", shards, "--out", tmp_path / "run", "--max-text-tokens", "200", *embed_args(tiny_models))
    assert_one_line_error(result, "--max-text-tokens 200", "128")
    assert not list((tmp_path / "run").rglob("*.parquet"))


def test_train_weight_decay_nan_writes_no_projection(trainable_run, tmp_path):
    """It used to exit 0 with NaN weights and a card claiming recall@1 = 1.0."""
    result = invoke("train", trainable_run, "--out", tmp_path / "proj", "--weight-decay", "nan", "--epochs", "1")
    assert_one_line_error(result, "--weight-decay")
    assert not (tmp_path / "proj").exists()


def assert_resumes(result, shards: Path, run: Path, tiny_models, *, shard_count: int) -> None:
    """The failure is one line; finished shards are whole; a rerun finishes the rest, keeping them."""
    assert_one_line_error(result, "ENOSPC", "rerun the same command")
    finished = {p.name: p.stat().st_mtime_ns for p in (run / "embeddings").glob("*.parquet")}
    assert 0 < len(finished) < shard_count
    for name in finished:
        assert pq.read_metadata(run / "embeddings" / name).num_rows == 2
    assert not [p for p in run.rglob(".*.tmp")], "no half-written files left"
    again = invoke("embed", shards, "--out", run, *embed_args(tiny_models))
    assert again.exit_code == 0, again.output
    assert len(list((run / "embeddings").glob("*.parquet"))) == shard_count
    assert all((run / "embeddings" / name).stat().st_mtime_ns == mtime for name, mtime in finished.items())


def test_a_simulated_full_disk_is_one_line_and_a_rerun_resumes(tmp_path, tiny_models, monkeypatch):
    shards = small_shards(tmp_path / "shards", 3)
    close, calls = ParquetTableWriter.close, []

    def full_on_the_second_shard(self):
        calls.append(self.final)
        if [Path(c).parent.name for c in calls].count("embeddings") == 2 and Path(self.final).parent.name == "embeddings":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self.tmp))
        return close(self)

    monkeypatch.setattr(ParquetTableWriter, "close", full_on_the_second_shard)
    result = invoke("embed", shards, "--out", tmp_path / "run", *embed_args(tiny_models))
    monkeypatch.setattr(ParquetTableWriter, "close", close)
    assert_resumes(result, shards, tmp_path / "run", tiny_models, shard_count=3)


@contextlib.contextmanager
def tmpfs(mount: Path, options: str) -> Iterator[Path]:
    """A tmpfs mounted at `mount` for the block (root on Linux); the test is skipped where not allowed."""
    mount.mkdir()
    if shutil.which("mount") is None or subprocess.run(
            ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(mount)], capture_output=True).returncode:
        pytest.skip(f"cannot mount a tmpfs ({options}) here: needs root")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=True)


@pytest.fixture
def small_disk(tmp_path):
    """A 256 KiB disk."""
    with tmpfs(tmp_path / "disk", "size=256k") as mount:
        yield mount


def test_a_real_full_disk_is_one_line_and_a_rerun_resumes(small_disk, tmp_path, tiny_models):
    shards = small_shards(tmp_path / "shards", 8)
    stat = os.statvfs(small_disk)
    filler = small_disk / "filler"
    filler.write_bytes(b"\0" * (stat.f_bavail * stat.f_frsize - 48 * 1024))  # room for about two shards
    result = invoke("embed", shards, "--out", small_disk / "run", *embed_args(tiny_models))
    filler.unlink()
    assert_resumes(result, shards, small_disk / "run", tiny_models, shard_count=8)


def test_a_read_only_out_is_one_line_before_work(tmp_path, tiny_models, monkeypatch):
    """Simulated (always runs): the folder refuses the lock file, the first thing written."""
    real_open = os.open

    def read_only(path, flags, *args):
        if flags & os.O_CREAT:
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))
        return real_open(path, flags, *args)

    monkeypatch.setattr(run_lock.os, "open", read_only)
    (tmp_path / "run").mkdir()
    result = invoke("embed", small_shards(tmp_path / "shards", 1), "--out", tmp_path / "run", *embed_args(tiny_models))
    assert_one_line_error(result, "--out", "Read-only file system")
    assert list((tmp_path / "run").iterdir()) == []


@pytest.fixture
def read_only_disk(tmp_path):
    with tmpfs(tmp_path / "ro", "ro,size=64k") as mount:
        yield mount


@pytest.mark.parametrize("command", ["embed", "filter", "report", "sql"])
def test_a_real_read_only_out_is_one_line(read_only_disk, hostile_run, tmp_path, tiny_models, command):
    args = {
        "embed": ["embed", small_shards(tmp_path / "shards", 1), "--out", read_only_disk / "run",
                  *embed_args(tiny_models)],
        "filter": ["filter", hostile_run.root, "--out", read_only_disk / "subset"],
        "report": ["report", hostile_run.root, "--out", read_only_disk / "r.html", "--sample", "0", "-q"],
        "sql": ["sql", hostile_run.root, "SELECT 1", "--format", "csv", "--output", read_only_disk / "a.csv"],
    }[command]
    assert_one_line_error(invoke(*args), "Read-only file system")
