"""The `curate embed` command as users run it: subprocesses, exit codes, SIGKILL and resume."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from curate.synthetic.shards import write_sample_shards

ENV = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")


def curate_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "curate.cli", *args]


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(curate_cmd(*args), capture_output=True, text=True, env=ENV, timeout=300)


def model_args(tiny_models: tuple[Path, Path]) -> list[str]:
    return ["--image-model", str(tiny_models[0]), "--text-model", str(tiny_models[1]), "--device", "cpu"]


@pytest.mark.parametrize(
    "args, says",
    [
        (["embed", "/no/such/place", "--out", "{tmp}/run"], "does not exist"),
        (["embed", "{shards}", "--out", "{tmp}/run", "--batch-size", "0"], "--batch-size"),
        (["embed", "{shards}", "--out", "{tmp}/run", "--format", "tiff-stack"], "known:"),
        (["embed", "{shards}", "--out", "{tmp}/run", "--image-model", "{tmp}/no-model"], "--image-model"),
        (["embed", "{shards}", "--out", "{tmp}/run", "--text-model", "nobody/no-such-bert"], "--text-model"),
        (["embed", "{shards}", "--out", "{tmp}/run", "--text-pooling", "max"], "pooling"),
        (["embed", "file:///no/such/[ab]*.tar", "--out", "{tmp}/run"], "No files match file:///no/such/[ab]*.tar."),
        (["embed", "nosuch://bucket/x", "--out", "{tmp}/run"], "nosuch://bucket/x is not a URL any installed"),
        (["embed", "{shards}", "--out", "nosuch://bucket/run"], "nosuch://bucket/run is not a URL any installed"),
    ],
)
def test_bad_input_gets_one_line_and_nonzero_exit(args, says, sample_shards, tiny_models, tmp_path):
    shards = str(sample_shards[0].parent.parent)
    filled = [a.format(tmp=tmp_path, shards=shards) for a in args]
    if "--image-model" not in filled:
        filled += ["--image-model", str(tiny_models[0])]
    if "--text-model" not in filled:
        filled += ["--text-model", str(tiny_models[1])]
    result = run_cli(*filled)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines and lines[-1].startswith("error:"), result.stderr
    assert says in " ".join(lines)


def test_help_explains_every_option():
    result = run_cli("embed", "--help")
    assert result.returncode == 0
    for option in ("--image-model", "--text-model", "--text-pooling", "--max-text-tokens", "--batch-size",
                   "--workers", "--device", "--format", "--limit", "--overwrite", "--quiet"):
        assert option in result.stdout, option


def read_run(run: Path) -> dict[str, tuple[list[str], np.ndarray, np.ndarray, int]]:
    out = {}
    for path in sorted((run / "embeddings").glob("*.parquet")):
        table = pq.read_table(path)
        image = np.stack(table.column("image_emb").to_numpy(zero_copy_only=False))
        text = np.stack(table.column("text_emb").to_numpy(zero_copy_only=False))
        errors = pq.read_metadata(run / "errors" / path.name).num_rows
        out[path.stem] = (table.column("key").to_pylist(), image, text, errors)
    return out


def kill_when(process: subprocess.Popen, ready) -> None:
    """SIGKILL the process as soon as `ready()` is true (or fail if it finished first)."""
    deadline = time.monotonic() + 240
    while not ready():
        assert process.poll() is None, "the run finished before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.005)
    process.send_signal(signal.SIGKILL)
    process.wait()


def mid_shard(run: Path):
    return lambda: any(p.name.endswith(".tmp") for p in (run / "embeddings").glob(".*"))


def after_first_shard(run: Path):
    return lambda: any((run / "embeddings").glob("*.parquet"))


@pytest.mark.slow
@pytest.mark.parametrize("moment", [mid_shard, after_first_shard])
def test_sigkill_then_rerun_gives_the_uninterrupted_result(moment, tiny_models, tmp_path):
    shards = tmp_path / "shards"
    write_sample_shards(shards, per_shard=30)
    common = ["--batch-size", "2", "--workers", "1", "--quiet", *model_args(tiny_models)]
    clean = run_cli("embed", str(shards), "--out", str(tmp_path / "clean"), *common)
    assert clean.returncode == 0, clean.stderr
    run = tmp_path / "killed"
    process = subprocess.Popen(curate_cmd("embed", str(shards), "--out", str(run), *common), env=ENV,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    kill_when(process, moment(run))
    finished_before = len(list((run / "embeddings").glob("*.parquet")))
    assert finished_before < 4
    resumed = run_cli("embed", str(shards), "--out", str(run), *common)
    assert resumed.returncode == 0, resumed.stderr
    expected, got = read_run(tmp_path / "clean"), read_run(run)
    assert sorted(got) == sorted(expected)
    for shard_id, (keys, image, text, errors) in expected.items():
        assert got[shard_id][0] == keys and len(set(keys)) == len(keys) == 30
        np.testing.assert_array_equal(got[shard_id][1], image)
        np.testing.assert_array_equal(got[shard_id][2], text)
        assert got[shard_id][3] == errors
    leftovers = [p for p in run.rglob(".*") if p.is_file()]
    assert leftovers == []
