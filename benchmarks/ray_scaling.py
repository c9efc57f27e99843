"""Single-worker figures for planning a Ray cluster: `embed` under the local and the ray executor.

    python benchmarks/ray_scaling.py [--pairs 96] [--per-shard 32] [--batch-size 32] [--workers 1]
                                     [--image-model DIR --text-model DIR]

Runs `curate embed` twice on the same shards in this process: `--executor local`, then
`--executor ray` with one Ray worker on a local Ray instance. Prints, per run: steady-state
pairs/s of the worker (pairs over the time spent inside shards), end-to-end pairs/s including
the Ray worker's start-up (process, imports, model load), and that start-up cost; and the
images/s one core decodes (which sizes the CPUs each GPU worker needs). These are
the measured inputs of the projection in docs/scale-out.md; the script projects nothing.
Without model arguments it builds ResNet-50- and BERT-base-shaped encoders with random
weights (the defaults' compute, no download). Ray must be installed (`pip install 'curate[ray]'`).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from embed_throughput import default_models, make_shards  # same folder: shared fixtures

from curate.pipelines.embed import run_embed
from curate.schemas.config.flow import EmbedConfig, EncoderConfig, ExecutorConfig
from curate.schemas.outcome import StepOutcome


def steady_rate(summary: StepOutcome) -> float:
    """Pairs/s inside shards: what one worker sustains once its models are loaded."""
    busy = sum(s.seconds for s in summary.shards if not s.skipped)
    return summary.pairs / busy if busy else 0.0


def decode_rate(shards: Path, image_model: str) -> float:
    """Images/s that one core decodes and preprocesses: sizes the CPUs a GPU worker needs."""
    import torch

    from curate.io.formats.detect import find_shards, reader_for
    from curate.models.image_encoder import ImageEncoder
    from curate.models.preprocess import decode_batch

    prep = ImageEncoder(image_model, device=torch.device("cpu")).preprocess
    images = [s.image for shard in find_shards([shards]) for s in reader_for(shard)]
    start = time.perf_counter()
    decode_batch(images, prep)
    return len(images) / (time.perf_counter() - start)


def run(shards: Path, out: Path, encoders: EncoderConfig, executor: ExecutorConfig, opts: argparse.Namespace) -> tuple[StepOutcome, float]:
    config = EmbedConfig(inputs=(shards,), out=out, encoders=encoders, batch_size=opts.batch_size,
                         workers=opts.workers, executor=executor)
    start = time.perf_counter()
    summary = run_embed(config, quiet=True)
    return summary, time.perf_counter() - start


def report(label: str, summary: StepOutcome, wall: float) -> None:
    """Start-up is the wall time not spent inside shards: process, imports, model load, scheduling."""
    busy = sum(s.seconds for s in summary.shards if not s.skipped)
    load = summary.stages.get("load models", 0.0)
    print(f"{label:6s} {summary.pairs:5d} pairs  steady {steady_rate(summary):7.2f} pairs/s  "
          f"end-to-end {summary.pairs / wall:7.2f} pairs/s  wall {wall:6.1f}s = shards {busy:6.1f}s "
          f"+ start-up {wall - busy:5.1f}s (of which model load {load:4.1f}s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pairs", type=int, default=96)
    parser.add_argument("--per-shard", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--workers", type=int, default=1, help="decode processes per worker")
    parser.add_argument("--image-model")
    parser.add_argument("--text-model")
    opts = parser.parse_args()
    import ray

    root = Path(tempfile.mkdtemp(prefix="curate-ray-bench-"))
    image, text = (opts.image_model, opts.text_model) if opts.image_model else default_models(root)
    shards = make_shards(root / "shards", pairs=opts.pairs, per_shard=opts.per_shard)
    encoders = EncoderConfig(image_model=image, text_model=text, device="cpu")
    cpus = os.cpu_count() or 2
    print(f"models: {Path(image).name} + {Path(text).name}, batch {opts.batch_size}, decode workers {opts.workers}, "
          f"{opts.pairs} pairs in shards of {opts.per_shard}, {cpus} CPUs, load average {os.getloadavg()[0]:.1f}")
    print(f"decode  {decode_rate(shards, image):7.1f} images/s on one core (read + decode + preprocess)")
    local, local_wall = run(shards, root / "local", encoders, ExecutorConfig(), opts)
    report("local", local, local_wall)
    ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=False)
    remote = ExecutorConfig(name="ray", num_cpus_per_worker=cpus, concurrency=1)
    summary, wall = run(shards, root / "ray", encoders, remote, opts)
    report("ray x1", summary, wall)
    ray.shutdown()


if __name__ == "__main__":
    main()
