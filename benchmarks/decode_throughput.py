"""Can curate's decode workers feed a model as fast as the machine decodes? And what does moving
a crop from a worker to the main process cost?

    python benchmarks/decode_throughput.py [--images 512] [--workers 2] [--batch 64] [--rounds 3]

For 512-px JPEG and 512-px PNG inputs (rendered scenes), in interleaved rounds, prints images/s of:
  * raw: PIL decode + resize + centre crop to 224 px in `--workers` processes started together,
    each decoding its own share of images it already holds, nothing sent back (the physical
    limit here);
  * curate: the embed path's `OrderedPool` running `decode_batch` (ResNet-50's preprocessing:
    resize 256, crop 224) on batches of image bytes, the pixels coming back to the main process
    through shared-memory slots as `embed` has them (`--pickled`: through the result pipe)
    and handed to a no-op model;
and the ratio curate / raw (target >= 0.9), with medians. It also prints the transport alone,
the main process's cost per crop (what a worker's result costs beyond decoding), both ways: a
batch of 224-px crops pickled and unpickled, and copied out of a shared-memory slot; in
microseconds and as a share of a crop's decode time.
"""

from __future__ import annotations

import argparse
import io
import multiprocessing as mp
import pickle
import statistics
import time

import numpy as np
from PIL import Image

from curate.models.preprocess import ImagePreprocess, decode_batch
from curate.runtime.pool import OrderedPool
from curate.runtime.shared_slots import SlotRing, into_slot
from curate.synthetic.scenes import render_scene

PREP = ImagePreprocess(resize_shortest=256, crop=224, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))


def images(count: int, image_format: str, *, distinct: int = 32) -> list[bytes]:
    rendered = [render_scene(i, size=512, image_format=image_format).image for i in range(distinct)]
    return [rendered[i % distinct] for i in range(count)]


def raw_decode(share: list[bytes]) -> int:
    """Plain PIL: decode, resize the short side to 256, centre-crop 224, to an array."""
    for data in share:
        img = Image.open(io.BytesIO(data))
        img.draft("RGB", (256, 256))
        img = img.convert("RGB").resize((256, 256), resample=Image.BICUBIC)
        np.asarray(img.crop((16, 16, 240, 240)), dtype=np.uint8)
    return len(share)


def raw_rate(data: list[bytes], workers: int) -> float:
    """`workers` processes, each holding its share before the clock starts (a barrier), decode
    at once; images/s over the slowest one's time."""
    context = mp.get_context("spawn")
    barrier, times = context.Barrier(workers), context.Queue()
    processes = [context.Process(target=_decode_share, args=(data[w::workers], barrier, times))
                 for w in range(workers)]
    for process in processes:
        process.start()
    slowest = max(times.get() for _ in processes)
    for process in processes:
        process.join()
    return len(data) / slowest


def _decode_share(share: list[bytes], barrier, times) -> None:
    barrier.wait()
    start = time.perf_counter()
    raw_decode(share)
    times.put(time.perf_counter() - start)


def curate_rate(pool: OrderedPool, data: list[bytes], batch: int, *, pickled: bool) -> float:
    """The embed path: batches of bytes to `decode_batch` in the workers, pixels back, a no-op model."""
    batches = [data[i:i + batch] for i in range(0, len(data), batch)]
    shared = None if pickled else ("pixels", batch * PREP.crop * PREP.crop * 3)
    start = time.perf_counter()
    done = 0
    for _, decoded in pool.map(decode_batch, batches, args=(PREP,), shared=shared):
        done += int(decoded.pixels.shape[0])  # the no-op model: the pixels are here, nothing is computed
    return done / (time.perf_counter() - start)


def transport_us_per_crop(batch: int) -> dict[str, float]:
    """The main process's cost per crop of a result's trip: pickled and unpickled, or copied
    out of a shared-memory slot."""
    pixels = np.random.default_rng(0).integers(0, 255, (batch, 224, 224, 3), dtype=np.uint8)
    reps = 20
    start = time.perf_counter()
    for _ in range(reps):
        pickle.loads(pickle.dumps(pixels, protocol=pickle.HIGHEST_PROTOCOL))
    pickled = (time.perf_counter() - start) / (reps * batch) * 1e6
    ring = SlotRing(1, pixels.nbytes)
    try:
        ref = ring.take()
        marker = into_slot(pixels, ref)  # the worker's side, not timed
        start = time.perf_counter()
        for _ in range(reps):
            ring.collect(marker, ref)
            ring.take()
        shared = (time.perf_counter() - start) / (reps * batch) * 1e6
    finally:
        ring.close()
    return {"pickled": pickled, "shared memory": shared}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=512)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--pickled", action="store_true", help="results through the pipe, not shared memory")
    args = parser.parse_args()
    inputs = {fmt: images(args.images, fmt) for fmt in ("JPEG", "PNG")}
    rates: dict[str, list[float]] = {f"{kind} {fmt}": [] for fmt in inputs for kind in ("raw", "curate")}
    with OrderedPool(args.workers) as pool:
        for number in range(args.rounds + 1):  # round 0 warms the workers up and is not counted
            for fmt, data in inputs.items():
                raw, ours = raw_rate(data, args.workers), curate_rate(pool, data, args.batch, pickled=args.pickled)
                if number:
                    rates[f"raw {fmt}"].append(raw)
                    rates[f"curate {fmt}"].append(ours)
                    print(f"round {number} {fmt}: raw {raw:,.0f}/s, curate {ours:,.0f}/s", flush=True)
    transport = transport_us_per_crop(args.batch)
    way = "pickled" if args.pickled else "shared memory"
    print(f"\n{args.images} images of 512 px per format, {args.workers} worker processes, batches of {args.batch}, "
          f"crops back by {way}:")
    for fmt in inputs:
        raw, ours = statistics.median(rates[f"raw {fmt}"]), statistics.median(rates[f"curate {fmt}"])
        costs = ", ".join(f"{name} {us:.0f} us/crop ({us / (1e6 * args.workers / raw):.1%} of a crop's decode)"
                          for name, us in transport.items())
        print(f"  {fmt:<5} raw PIL {raw:8,.0f} images/s   curate workers -> no-op model {ours:8,.0f} images/s   "
              f"ratio {ours / raw:.2f}   transport: {costs}")


if __name__ == "__main__":
    main()
