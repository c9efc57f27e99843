"""`curate embed --executor ray --quiet` as a user runs it: a fresh process, its own Ray instance.

Apart from the in-process tests (tests/runtime/test_ray_executor.py), because what `--quiet`
must keep off the terminal is what Ray prints when a process starts and joins an instance.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("ray")
REPO = Path(__file__).resolve().parents[2]


def test_quiet_prints_nothing_but_the_result_on_a_clean_run(sample_shards, tiny_models, tmp_path):
    image, text = tiny_models
    tar = next(p for p in sample_shards if p.suffix == ".tar")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    env.pop("RAY_ADDRESS", None)
    done = subprocess.run(
        [sys.executable, "-m", "curate.cli", "embed", str(tar), "--out", str(tmp_path / "run"), "--quiet",
         "--executor", "ray", "--ray-address", "local", "--image-model", str(image), "--text-model", str(text),
         "--device", "cpu", "--workers", "0", "--batch-size", "4"],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # no Ray notices, no worker lines, no bar
    assert "total" in done.stdout and (tmp_path / "run" / "embeddings" / f"{tar.stem}.parquet").is_file()
