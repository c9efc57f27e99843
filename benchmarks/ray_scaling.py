"""Measured inputs for planning a Ray cluster: decode rate per core, 1 worker against 2, driver cost.

    python benchmarks/ray_scaling.py [--pairs 96] [--per-shard 16] [--batch-size 16] [--models base|tiny]
                                     [--decode-images 64] [--photos DIR] [--images DIR] [--skip-local]

Prints, on this machine:
  1. decode: images/s one core reads, decodes and preprocesses (ResNet-50's resize 256 / crop
     224) for 512-px PNG and JPEG images, with their mean size: rendered scenes (flat colours,
     small files) and, with `--photos` (default: the project's COCO sample when present),
     real photographs scaled to 512 px; with `--images`, your own images as they are;
  2. the same embed job run by `--executor local`, then by one Ray worker, then by two (one
     CPU each, decoding in the worker's own process): pairs, the run's seconds (its bar's
     clock: start-up included), end-to-end pairs/s, steady pairs/s (pairs over the seconds
     spent inside shards, times the workers), and the 2-against-1 ratios: the scaling
     efficiency, end to end and steady;
  3. the worker CPU seconds per pair (all its threads, per shard): on a machine shared with
     other jobs, wall-time rates of two workers fall with the contention, CPU per pair does not,
     so its 1-against-2 ratio is the scaling two workers would get on cores of their own;
  4. the driver's own cost: CPU seconds of this process during each Ray run, per shard and as
     a share of one core.
The `docs/scale-out.md` planning table is derived from these figures; this script projects
nothing. Ray must be installed (`pip install 'curate[ray]'`). No GPU is used.
"""

from __future__ import annotations

import argparse
import io
import os
import resource
import statistics
import tempfile
import time
from pathlib import Path

from embed_throughput import default_models, make_shards  # same folder: shared fixtures

import curate.pipelines.embed as embed_module
from curate.pipelines.embed import EmbedWorker, run_embed
from curate.runtime.jobs import ignore_progress
from curate.schemas.config.flow import EmbedConfig, EncoderConfig, ExecutorConfig
from curate.schemas.outcome import StepOutcome

PHOTOS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "coco300" / "images"
SIZE = 512


def rendered(count: int, fmt: str) -> list[bytes]:
    from curate.synthetic.scenes import render_scene

    return [render_scene(i, size=SIZE, image_format=fmt).image for i in range(count)]


def photos(folder: Path, count: int, fmt: str) -> list[bytes]:
    """Real photographs scaled to 512x512 and re-encoded (PNG lossless, JPEG quality 90)."""
    from PIL import Image

    out = []
    for path in sorted(folder.glob("*.jpg"))[:count]:
        buffer = io.BytesIO()
        Image.open(path).convert("RGB").resize((SIZE, SIZE), Image.BICUBIC).save(buffer, fmt, quality=90)
        out.append(buffer.getvalue())
    return out


def decode_rate(images: list[bytes]) -> float:
    """Images/s through the decode workers' function on this one core."""
    from curate.models.preprocess import decode_batch, preprocess_from_config

    prep = preprocess_from_config({"size": {"shortest_edge": 224}, "crop_pct": 0.875})  # microsoft/resnet-50's
    decode_batch(images[:4], prep)  # warm-up: imports, codec tables
    start = time.process_time()
    decoded = decode_batch(images, prep)
    assert not decoded.failed
    return len(images) / (time.process_time() - start)


def print_decode_rates(count: int, photo_dir: Path | None, image_dir: Path | None) -> None:
    sources = [(f"rendered scenes {SIZE}-px", fmt, lambda fmt: rendered(count, fmt)) for fmt in ("PNG", "JPEG")]
    if photo_dir is not None and photo_dir.is_dir():
        sources += [(f"photographs {SIZE}-px", fmt, lambda fmt: photos(photo_dir, count, fmt))
                    for fmt in ("PNG", "JPEG")]
    else:
        print("decode  (no photographs found: pass --photos DIR for real-picture figures)")
    if image_dir is not None:  # e.g. a DiffusionDB part unzipped: its PNGs as they are
        files = sorted(p for p in image_dir.iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg", ".webp"))[:count]
        sources.append((f"{image_dir.name} as is", "", lambda fmt: [p.read_bytes() for p in files]))
    for name, fmt, make in sources:
        images = make(fmt)
        kb = statistics.mean(len(i) for i in images) / 1e3
        print(f"decode  {name:26s} {fmt:4s} {kb:7.1f} KB/image  "
              f"{decode_rate(images):7.1f} images/s per core (CPU time, {len(images)} images)")


class CpuTimedWorker(EmbedWorker):
    """The embed worker, also counting the CPU seconds its process spends per shard (all its
    threads): unlike wall time, that does not grow when other jobs share the cores, so the
    1-against-2 comparison of CPU per pair says what two workers would do on free cores."""

    def run(self, shard, advance=ignore_progress, upcoming=None):  # type: ignore[no-untyped-def]
        start = time.process_time()
        outcome = super().run(shard, advance, upcoming)
        outcome.counts["cpu_ms"] = round(1e3 * (time.process_time() - start))
        return outcome


def run(shards: Path, out: Path, encoders: EncoderConfig, executor: ExecutorConfig,
        batch: int) -> tuple[StepOutcome, float, float]:
    """The summary, the wall seconds and the CPU seconds this (driver) process spent."""
    config = EmbedConfig(inputs=(shards,), out=out, encoders=encoders, batch_size=batch, workers=0, executor=executor)
    cpu = resource.getrusage(resource.RUSAGE_SELF)
    start = time.perf_counter()
    summary = run_embed(config, quiet=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_SELF)
    return summary, wall, (after.ru_utime - cpu.ru_utime) + (after.ru_stime - cpu.ru_stime)


def rates(summary: StepOutcome, workers: int) -> tuple[float, float, float]:
    """(end-to-end pairs/s over the run's clock, steady pairs/s of the pool inside shards,
    worker CPU seconds per pair)."""
    busy = sum(s.seconds for s in summary.done)
    cpu = sum(s.counts.get("cpu_ms", 0) for s in summary.done) / 1e3
    return summary.pairs / summary.seconds, workers * summary.pairs / busy, cpu / summary.pairs


def report(label: str, summary: StepOutcome, workers: int, wall: float,
           driver_cpu: float | None) -> tuple[float, float, float]:
    e2e, steady, cpu_per_pair = rates(summary, workers)
    line = (f"{label:8s} {summary.pairs:4d} pairs in {len(summary.done)} shards  run {summary.seconds:6.1f} s "
            f"(wall {wall:6.1f} s)  end-to-end {e2e:6.2f} pairs/s  steady {steady:6.2f} pairs/s  "
            f"worker CPU {cpu_per_pair:5.2f} s/pair")
    if driver_cpu is not None:
        line += (f"  driver CPU {driver_cpu:5.1f} s = {driver_cpu / wall:5.1%} of a core, "
                 f"{1e3 * driver_cpu / len(summary.done):6.0f} ms/shard")
    print(line)
    return e2e, steady, cpu_per_pair


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pairs", type=int, default=96)
    parser.add_argument("--per-shard", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--models", choices=("base", "tiny"), default="base")
    parser.add_argument("--decode-images", type=int, default=64)
    parser.add_argument("--photos", type=Path, default=PHOTOS, help="photographs to scale to 512 px")
    parser.add_argument("--images", type=Path, help="images to decode as they are (e.g. DiffusionDB PNGs)")
    parser.add_argument("--skip-local", action="store_true")
    opts = parser.parse_args()
    import ray

    from cpu_threads import tiny_models

    from curate.console import quiet_library_progress_bars

    quiet_library_progress_bars()
    embed_module.EmbedWorker = CpuTimedWorker  # what run_embed hands every executor (Ray workers import this file)

    root = Path(tempfile.mkdtemp(prefix="curate-ray-bench-"))
    image, text = default_models(root) if opts.models == "base" else tiny_models(root / "models")
    shards = make_shards(root / "shards", pairs=opts.pairs, per_shard=opts.per_shard)
    encoders = EncoderConfig(image_model=image, text_model=text, device="cpu")
    cpus = os.cpu_count() or 2
    print(f"models: {opts.models} ({Path(image).name} + {Path(text).name}), batch {opts.batch_size}, {opts.pairs} "
          f"pairs (384-px JPEG scenes) in shards of {opts.per_shard}, {cpus} CPUs, load average "
          f"{os.getloadavg()[0]:.1f}; no GPU")
    print_decode_rates(opts.decode_images, opts.photos, opts.images)
    if not opts.skip_local:
        summary, wall, _ = run(shards, root / "local", encoders, ExecutorConfig(), opts.batch_size)
        report("local", summary, 1, wall, None)
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(Path(__file__).parent), os.environ.get("PYTHONPATH")]))
    ray.init(address="local", num_cpus=cpus, num_gpus=0, include_dashboard=False, log_to_driver=False)
    figures = {}
    for workers in (1, 2):
        executor = ExecutorConfig(name="ray", num_cpus_per_worker=1, num_gpus_per_worker=0, concurrency=workers)
        summary, wall, driver_cpu = run(shards, root / f"ray-{workers}", encoders, executor, opts.batch_size)
        figures[workers] = report(f"ray x{workers}", summary, workers, wall, driver_cpu)
    ray.shutdown()
    (e2e1, steady1, cpu1), (e2e2, steady2, cpu2) = figures[1], figures[2]
    print(f"scaling 2 workers / (2 x 1 worker): end-to-end {e2e2 / (2 * e2e1):.2f}, "
          f"steady {steady2 / (2 * steady1):.2f}, on free cores (CPU per pair, 1 / 2 workers) {cpu1 / cpu2:.2f}  "
          f"(load average now {os.getloadavg()[0]:.1f})")


if __name__ == "__main__":
    main()
