"""Index, search and dedup at scale on stored synthetic vectors (no encoders needed).

    python benchmarks/index_scale.py                       # 100k and 1M rows, 256-d, auto kind
    python benchmarks/index_scale.py --rows 100000 --kinds ivf-flat,ivf-pq,hnsw --spread 1.5 --no-dedup

For each size: clustered 256-d vectors (2000 Gaussian clusters; `--spread` is the noise's
standard deviation relative to the centres': 1.0 puts a point as far from its centre as the
centre is from the origin, 1.5 makes clusters overlap so that nearest neighbours are hard
to find) are written as real embeddings files (the run's
writer and schema), a random 256-d projection is saved with a card, then `curate index`,
a query benchmark and `curate dedup` each run in a fresh process so their peak RSS is
their own. Prints build seconds per phase, peak RSS, queries/s (one query at a time, and
batches of 1000) and the measured recall@10 of each index type chosen.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

DIM, SHARD_ROWS, CLUSTERS = 256, 50_000, 2000


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def in_child(fn: Callable[..., dict[str, Any]], *args: Any) -> dict[str, Any]:
    """Run `fn(*args)` in a fresh spawned process; its result gains the child's peak RSS."""
    with ProcessPoolExecutor(max_workers=1, mp_context=mp.get_context("spawn")) as pool:
        return pool.submit(_measured, fn, *args).result()  # raises, rather than hangs, if the child dies


def _measured(fn: Callable[..., dict[str, Any]], *args: Any) -> dict[str, Any]:
    return dict(fn(*args), peak_rss_mb=round(peak_rss_mb()))


def write_data(root: Path, rows: int, spread: float) -> dict[str, Any]:
    from curate.synthetic.vectors import (
        synthetic_encoders,
        synthetic_projection,
        write_synthetic_run,
    )

    start = time.perf_counter()
    write_synthetic_run(root / "run", rows=rows, dim=DIM, shards=max(1, rows // SHARD_ROWS), clusters=CLUSTERS,
                        spread=spread, seed=0)
    image, text = synthetic_encoders(DIM, DIM)
    synthetic_projection(root / "projection", image=image, text=text, dim=DIM)
    return {"seconds": round(time.perf_counter() - start, 1), "spread": spread}


def build(root: Path, kind: str) -> dict[str, Any]:
    from curate.pipelines.index import run_index
    from curate.schemas.config.vectors import IndexConfig

    config = IndexConfig(run_dir=root / "run", projection=root / "projection", index_type=kind, device="cpu", overwrite=True)
    card = run_index(config, quiet=True).card
    return {"card": card.to_json()}


def query_speed(root: Path, spread: float) -> dict[str, Any]:
    """Queries/s of the image index: single queries (latency-bound) and batches of 1000."""
    from curate.index.store import BuiltIndex
    from curate.synthetic.vectors import clustered_vectors

    built = BuiltIndex.open(root / "run")
    index, _ = built.load("image", device="cpu")
    projection = built.projection()
    raw = next(clustered_vectors(1200, DIM, clusters=CLUSTERS, spread=spread, seed=1))  # text-side vectors
    queries = projection.project_text(raw)
    start = time.perf_counter()
    for row in queries[:200]:
        index.search(row[None], 10)
    single = 200 / (time.perf_counter() - start)
    start = time.perf_counter()
    index.search(queries[200:1200], 10)
    batched = 1000 / (time.perf_counter() - start)
    return {"single_qps": round(single), "batch_qps": round(batched)}


def dedup(root: Path) -> dict[str, Any]:
    from curate.pipelines.dedup import run_dedup
    from curate.schemas.config.vectors import DedupConfig

    start = time.perf_counter()
    summary = run_dedup(DedupConfig(run_dir=root / "run", device="cpu", overwrite=True), quiet=True).summary
    return {"seconds": round(time.perf_counter() - start, 1), "phases": summary.seconds, "groups": summary.groups,
            "dropped": summary.dropped}


def report(rows: int, kind: str, data: dict, built: dict, speed: dict, dd: dict | None) -> None:
    card = built["card"]
    print(f"\n== {rows:,} rows x {DIM}-d, spread {data['spread']}, --index-type {kind}  (data written in {data['seconds']}s)")
    print(f"index build: {card['seconds']['total']:.1f}s total, projection pass {card['seconds']['project']:.1f}s, "
          f"peak RSS {built['peak_rss_mb']:,} MB")
    for side, entry in card["indexes"].items():
        phases = ", ".join(f"{k} {v:.1f}s" for k, v in entry["seconds"].items())
        print(f"  {side:5s} {entry['kind']:8s} {entry['factory']:32s} search {entry['search']} "
              f"recall@10 {entry['recall_at_10']:.3f}  file {entry['file_bytes'] / 1e6:,.0f} MB  ({phases})")
    print(f"queries/s (image index, k=10): {speed['single_qps']:,} one at a time, {speed['batch_qps']:,} in batches "
          f"of 1000; peak RSS {speed['peak_rss_mb']:,} MB")
    if dd:
        phases = ", ".join(f"{k} {v:.1f}s" for k, v in dd["phases"].items())
        print(f"dedup (threshold 0.95, k=16): {dd['seconds']}s ({phases}), {dd['groups']:,} groups, "
              f"{dd['dropped']:,} marked, peak RSS {dd['peak_rss_mb']:,} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", default="100000,1000000", help="comma-separated row counts")
    parser.add_argument("--kinds", default="auto", help="comma-separated --index-type values, each built per size")
    parser.add_argument("--spread", type=float, default=1.0, help="cluster noise relative to the centres")
    parser.add_argument("--no-dedup", action="store_true", help="skip the dedup pass")
    parser.add_argument("--dir", type=Path, default=None, help="work folder (default: a temporary one)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="curate-index-scale-", dir=args.dir) as tmp:
        for rows in (int(r) for r in args.rows.split(",")):
            root = Path(tmp) / f"rows-{rows}"
            data = in_child(write_data, root, rows, args.spread)
            for kind in args.kinds.split(","):
                built = in_child(build, root, kind)
                speed = in_child(query_speed, root, args.spread)
                dd = None if args.no_dedup else in_child(dedup, root)
                report(rows, kind, data, built, speed, dd)


if __name__ == "__main__":
    main()
