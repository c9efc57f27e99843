"""`benchmarks/gpu_check.sh` runs right the first time: here on CPU, with tiny sizes and models,
it builds the shards, times both model shapes and prints every figure the GPU run prints."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[2]


def test_the_gpu_check_runs_on_cpu_with_tiny_sizes(tmp_path):
    env = {**os.environ, "CURATE_GPU_INSTALL": "0", "CURATE_GPU_DEVICE": "cpu", "CURATE_GPU_PAIRS": "40",
           "CURATE_GPU_IMAGE_PX": "64", "CURATE_GPU_BATCH": "8", "CURATE_GPU_WORKERS": "1",
           "CURATE_GPU_BARE_BATCHES": "2", "CURATE_GPU_TINY": "1", "CURATE_GPU_DIR": str(tmp_path)}
    done = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu_check.sh")], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    figures = re.findall(r"^(\S+): bare forward ([\d,]+) pairs/s; curate embed end to end ([\d,]+) pairs/s; "
                         r"ratio ([\d.]+); GPU utilisation (.+)$", done.stdout, re.MULTILINE)
    assert [shape for shape, *_ in figures] == ["resnet50-bert", "clip-vit-b32"], done.stdout
    for _, bare, e2e, ratio, _utilisation in figures:
        bare, e2e = float(bare.replace(",", "")), float(e2e.replace(",", ""))
        assert bare > 0 and e2e > 0  # printed rounded to whole pairs/s, the ratio to two decimals:
        assert (e2e - 0.5) / (bare + 0.5) - 0.005 <= float(ratio) <= (e2e + 0.5) / max(bare - 0.5, 0.5) + 0.005
    for shape in ("resnet50-bert", "clip-vit-b32"):  # every pair really went through `curate embed`
        files = sorted((tmp_path / f"run-{shape}" / "embeddings").glob("*.parquet"))
        assert sum(pq.read_metadata(f).num_rows for f in files) == 40
