"""Item 5: one writer per run directory. A second writer is refused in one line naming the
first; the lock goes on every exit; a lock whose holder died is taken over; temp files of
live processes are never swept."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from curate.errors import CurateError
from curate.io.atomic import remove_stale_tmp
from curate.io.location import tmp_name
from curate.io.run_lock import LOCK_FILE, hold
from curate.schemas.layout import RunLayout
from curate.synthetic.vectors import synthetic_encoders, synthetic_projection, write_synthetic_run
from tests.fixtures import wds_members, write_tar
from tests.pipelines.fake_scores import score_embeddings
from tests.hostile.conftest import assert_one_line_error, invoke

HOLDER = """
import sys, time
from pathlib import Path
from curate.io.run_lock import hold
with hold(Path(sys.argv[1]), "embed"):
    tmp = Path(sys.argv[1]) / "embeddings"
    tmp.mkdir(exist_ok=True)
    from curate.io.location import tmp_name
    tmp_name(tmp / "00000.parquet").write_bytes(b"half a shard")
    print("holding", flush=True)
    time.sleep(120)
"""


@pytest.fixture
def holder(tmp_path):
    """Another process holding `tmp_path/run` as `curate embed` would, with a temp file in flight."""
    run = tmp_path / "run"
    proc = hold_in_another_process(run)
    yield run, proc
    proc.kill()
    proc.wait()


def one_shard(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    return write_tar(folder / "00001.tar", wds_members(1) + wds_members(2))


def model_args(tiny_models) -> list[str]:
    return ["--image-model", str(tiny_models[0]), "--text-model", str(tiny_models[1]), "--device", "cpu",
            "--workers", "0", "-q"]


def test_a_second_embed_is_refused_and_leaves_the_first_ones_files_alone(holder, tmp_path, tiny_models):
    run, proc = holder
    in_flight = [p for p in (run / "embeddings").iterdir()]
    assert len(in_flight) == 1 and f".{proc.pid}@" in in_flight[0].name
    result = invoke("embed", one_shard(tmp_path / "shards"), "--out", run, *model_args(tiny_models))
    line = assert_one_line_error(result, "curate embed", f"pid {proc.pid}", str(run / LOCK_FILE))
    assert "being written by" in line
    assert [p for p in (run / "embeddings").iterdir()] == in_flight, "the first writer's temp file must survive"
    assert proc.poll() is None and json.loads((run / LOCK_FILE).read_text())["pid"] == proc.pid


def hold_in_another_process(folder: Path) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(folder)], stdout=subprocess.PIPE, text=True, env=env)
    assert proc.stdout.readline().strip() == "holding"
    return proc


@pytest.mark.parametrize("command", ["score", "index", "dedup", "train", "filter"])
def test_every_writer_is_refused_while_its_folder_is_held(tmp_path, command):
    """Each command that writes a folder reaches its lock (the inputs are real) and is refused."""
    run, proj = tmp_path / "run", tmp_path / "proj"
    write_synthetic_run(run, rows=64, dim=8, shards=2, clusters=4)
    image, text = synthetic_encoders(8, 8)
    synthetic_projection(proj, image=image, text=text, dim=8)
    score_embeddings(RunLayout(run))
    args, held = {
        "score": ([run, "--projection", proj, "--out", run], run),
        "index": ([run, "--projection", proj], run),
        "dedup": ([run], run),
        "train": ([run, "--out", tmp_path / "trained"], tmp_path / "trained"),
        "filter": ([run, "--out", tmp_path / "subset"], tmp_path / "subset"),
    }[command]
    proc = hold_in_another_process(held)
    before = sorted(tmp_path.rglob("*"))
    try:
        assert_one_line_error(invoke(command, *args), "being written by `curate embed`", f"pid {proc.pid}")
        assert proc.poll() is None and (held / LOCK_FILE).exists()
        assert sorted(tmp_path.rglob("*")) == before, "a refused writer changes nothing"
    finally:
        proc.kill()
        proc.wait()


def test_a_lock_left_by_a_killed_writer_is_taken_over(holder, tmp_path, tiny_models):
    run, proc = holder
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert (run / LOCK_FILE).exists(), "SIGKILL cannot release the lock"
    result = invoke("embed", one_shard(tmp_path / "shards"), "--out", run, *model_args(tiny_models))
    assert result.exit_code == 0, result.output
    assert (run / "embeddings" / "00001.parquet").is_file()
    assert not (run / LOCK_FILE).exists()
    assert [p.name for p in (run / "embeddings").iterdir()] == ["00001.parquet"], "the dead writer's temp file went"


def test_a_lock_from_another_host_is_refused_with_the_file_to_delete(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    other = {"command": "embed", "pid": os.getpid(), "host": socket.gethostname() + "-elsewhere", "since": time.time()}
    (run / LOCK_FILE).write_text(json.dumps(other))
    with pytest.raises(CurateError, match="elsewhere") as refused:
        with hold(run, "score"):
            pass
    assert str(run / LOCK_FILE) in str(refused.value)


def test_the_lock_is_released_on_error_and_interrupt(tmp_path):
    run = tmp_path / "run"
    for exc in (CurateError("boom"), KeyboardInterrupt(), RuntimeError("bug")):
        with pytest.raises(type(exc)):
            with hold(run, "embed"):
                assert (run / LOCK_FILE).exists()
                raise exc
        assert not (run / LOCK_FILE).exists()


def test_holding_is_reentrant_within_one_process(tmp_path):
    """`score` embeds new shards into the run it holds."""
    run = tmp_path / "run"
    with hold(run, "score"):
        with hold(run, "embed"):
            pass
        assert json.loads((run / LOCK_FILE).read_text())["command"] == "score"
    assert not (run / LOCK_FILE).exists()


def test_sweeping_spares_files_of_running_processes(tmp_path):
    folder = tmp_path / "embeddings"
    folder.mkdir()
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    dead_pid = subprocess.Popen([sys.executable, "-c", "pass"])
    dead_pid.wait()
    try:
        host = socket.gethostname()
        live = folder / f".00001.parquet.{sleeper.pid}@{host}.tmp"
        mine = tmp_name(folder / "00002.parquet")
        dead = folder / f".00003.parquet.{dead_pid.pid}@{host}.tmp"
        legacy = folder / ".00004.parquet.999999999.tmp"
        elsewhere = folder / f".00005.parquet.{sleeper.pid}@{host}-elsewhere.tmp"
        for path in (live, mine, dead, legacy, elsewhere):
            path.write_bytes(b"x")
        assert remove_stale_tmp(folder) == 2
        assert {p.name for p in folder.iterdir()} == {live.name, mine.name, elsewhere.name}
        assert remove_stale_tmp(folder, settled_before=time.time() + 1) == 1  # another host's file, older than that
        assert {p.name for p in folder.iterdir()} == {live.name, mine.name}
    finally:
        sleeper.kill()
        sleeper.wait()
