"""How close `curate filter` comes to reading the same Parquet files with pyarrow alone.

    python benchmarks/filter_throughput.py [--rows 100000] [--shards 10] [--image-px 48]
                                           [--min-sim 0.0] [--top-fraction F] [--format parquet]

Builds a synthetic scored run in a temporary folder: `--shards` img2dataset-style Parquet
source shards holding `--rows` small JPEGs (a few hundred rendered scenes, reused), and one
scores file per shard with a random similarity. Then prints, for the same files in one run:
  * pyarrow alone: rows/s reading every scores file and every source shard whole,
  * `curate filter` (DuckDB selection, re-reading the sources through the Parquet reader,
    writing the kept pairs with their image bytes): scored rows/s, and the ratio.
The ratio is the figure to watch: it says what the per-sample reader/writer path costs over
the bare columnar read.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from curate.pipelines.filter import run_filter
from curate.schemas.arrow_schemas import scores_schema
from curate.schemas.config.flow import FilterConfig
from curate.schemas.layout import RunLayout
from curate.schemas.tables import ScoresInfo
from curate.synthetic.scenes import render_scene

DISTINCT_IMAGES = 256
META = pa.schema([("width", pa.int64()), ("height", pa.int64())])


def make_run(root: Path, *, rows: int, shards: int, image_px: int, seed: int = 0) -> RunLayout:
    """Source shards under root/shards and their scores under root/run/scores."""
    images = [render_scene(i, size=image_px, image_format="JPEG").image for i in range(DISTINCT_IMAGES)]
    rng = np.random.default_rng(seed)
    layout = RunLayout(root / "run")
    per_shard = -(-rows // shards)
    for number, start in enumerate(range(0, rows, per_shard)):
        count = min(per_shard, rows - start)
        _write_shard(root / "shards", layout, number, start, count, images, rng)
    return layout


def _write_shard(folder: Path, layout: RunLayout, number: int, start: int, count: int,
                 images: list[bytes], rng: np.random.Generator) -> None:
    shard_id = f"{number:05d}"
    members = [f"{start + i:09d}" for i in range(count)]
    captions = [f"a synthetic caption for pair {start + i}, highly detailed" for i in range(count)]
    sizes = pa.array([48] * count, pa.int64())
    source = folder / f"{shard_id}.parquet"
    folder.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table({
        "key": members, "jpg": pa.array([images[(start + i) % len(images)] for i in range(count)], pa.binary()),
        "caption": captions, "width": sizes, "height": sizes,
    }), source, use_dictionary=["key", "caption"])
    info = ScoresInfo(shard_id=shard_id, source=str(source.resolve()), format="parquet",
                      projection="fp-benchmark", projection_dir="-", versions={})
    schema = scores_schema(info, META)
    similarity = pa.array(rng.uniform(-1, 1, count).astype(np.float32))
    keys = [f"{shard_id}/{m}" for m in members]
    table = pa.table([keys, captions, similarity, sizes, sizes], schema=schema)
    layout.table_dir("scores").mkdir(parents=True, exist_ok=True)
    pq.write_table(table, layout.scores(shard_id))


def pyarrow_rows_per_second(layout: RunLayout) -> tuple[float, int]:
    """Every scores file and every source shard read whole by pyarrow: scored rows/s."""
    start = time.perf_counter()
    rows = 0
    for scores in layout.shard_files("scores"):
        table = pq.read_table(scores)
        rows += table.num_rows
        source = pq.read_schema(scores).metadata[b"curate"]
        pq.read_table(ScoresInfo.from_bytes(source).source)
    return rows / (time.perf_counter() - start), rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--shards", type=int, default=10)
    parser.add_argument("--image-px", type=int, default=48)
    parser.add_argument("--min-sim", type=float, default=0.0)
    parser.add_argument("--top-fraction", type=float, default=None)
    parser.add_argument("--format", default="parquet")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        build = time.perf_counter()
        layout = make_run(root, rows=args.rows, shards=args.shards, image_px=args.image_px)
        source_mb = sum(p.stat().st_size for p in (root / "shards").iterdir()) / 1e6
        print(f"synthetic run: {args.rows:,} scored pairs in {args.shards} Parquet shards "
              f"({source_mb:,.1f} MB of sources), built in {time.perf_counter() - build:.1f}s")
        pq.read_table(layout.shard_files("scores")[0])  # warm the page cache and imports alike
        bare, rows = pyarrow_rows_per_second(layout)
        config = FilterConfig(run_dir=layout.root, out=root / "subset", min_sim=args.min_sim,
                              top_fraction=args.top_fraction, format=args.format)
        summary = run_filter(config, quiet=True)
        counts = summary.manifest.counts
        print(f"pyarrow alone (scores + sources, whole files): {bare:,.0f} rows/s over {rows:,} rows")
        print(f"curate filter --min-sim {args.min_sim} --top-fraction {args.top_fraction} --format {args.format}: "
              f"{summary.rows_per_second:,.0f} scored rows/s ({counts.kept:,} kept, {counts.dropped:,} dropped, "
              f"{summary.seconds:.1f}s)")
        print(f"ratio filter / pyarrow: {summary.rows_per_second / bare:.3f}")


if __name__ == "__main__":
    main()
