"""How close `curate filter` comes to reading the same files without curate, per source format.

    python benchmarks/filter_throughput.py [--rows 40000] [--shards 4] [--image-px 64] [--rounds 3]
                                           [--formats parquet,webdataset]

Builds two synthetic scored runs of the same pairs in a temporary folder: one over img2dataset-
style Parquet shards, one over WebDataset tars (`{key}.jpg`, `.txt`, `.json`), each with one
scores file per shard holding a random similarity. Then, in interleaved rounds (so a neighbour's
load on a shared machine falls on both sides alike), it times for each source format:

  * the bare read: every scores file read by pyarrow plus every source shard read whole, by
    pyarrow (Parquet) or by a plain `tarfile` stream reading every member's bytes (tar);
  * `curate filter` into a subset of the same format (Parquet -> Parquet, tar -> tar), with
    `--min-sim 0`, `--top-fraction 0.1` and a `--where` on the caption, timed around the whole
    call (DuckDB selection, source reads, writing the kept pairs, manifest);

and prints each one's rows/s per round, the medians and the ratio of medians (filter / read;
the target is >= 0.8). The first round is a warm-up (page cache, imports) and is not counted.
"""

from __future__ import annotations

import argparse
import io
import json
import shutil
import statistics
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Callable

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
CRITERIA = {
    "--min-sim 0": dict(min_sim=0.0),
    "--top-fraction 0.1": dict(top_fraction=0.1),
    "--where \"text LIKE '%pair 1%'\"": dict(where="text LIKE '%pair 1%'"),
}


def make_runs(root: Path, *, rows: int, shards: int, image_px: int, formats: list[str],
              seed: int = 0) -> dict[str, RunLayout]:
    """The same pairs as Parquet shards and/or as tars, each with its own scored run."""
    images = [render_scene(i, size=image_px, image_format="JPEG").image for i in range(DISTINCT_IMAGES)]
    runs = {fmt: RunLayout(root / f"run-{fmt}") for fmt in formats}
    per_shard = -(-rows // shards)
    for number, start in enumerate(range(0, rows, per_shard)):
        shard = _pairs(number, start, min(per_shard, rows - start), images)
        similarity = pa.array(np.random.default_rng(seed + number).uniform(-1, 1, len(shard["key"])), pa.float32())
        for fmt, layout in runs.items():
            source = (_write_parquet if fmt == "parquet" else _write_tar)(root / f"shards-{fmt}", shard)
            _write_scores(layout, shard, source, fmt, similarity)
    return runs


def _pairs(number: int, start: int, count: int, images: list[bytes]) -> dict:
    members = [f"{start + i:09d}" for i in range(count)]
    return {"id": f"{number:05d}", "key": members,
            "jpg": [images[(start + i) % len(images)] for i in range(count)],
            "caption": [f"a synthetic caption for pair {start + i}, highly detailed" for i in range(count)],
            "size": [48] * count}


def _write_parquet(folder: Path, shard: dict) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{shard['id']}.parquet"
    pq.write_table(pa.table({"key": shard["key"], "jpg": pa.array(shard["jpg"], pa.binary()),
                             "caption": shard["caption"], "width": shard["size"], "height": shard["size"]}),
                   path, use_dictionary=["key", "caption"])
    return path


def _write_tar(folder: Path, shard: dict) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{shard['id']}.tar"
    with tarfile.open(path, "w", format=tarfile.USTAR_FORMAT) as tar:
        for key, image, caption, size in zip(shard["key"], shard["jpg"], shard["caption"], shard["size"]):
            meta = json.dumps({"key": key, "caption": caption, "width": size, "height": size}).encode()
            for suffix, data in ((".jpg", image), (".txt", caption.encode()), (".json", meta)):
                info = tarfile.TarInfo(key + suffix)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return path


def _write_scores(layout: RunLayout, shard: dict, source: Path, fmt: str, similarity: pa.Array) -> None:
    info = ScoresInfo(shard_id=shard["id"], source=str(source.resolve()), format=fmt,
                      projection="fp-benchmark", projection_dir="-", versions={})
    sizes = pa.array(shard["size"], pa.int64())
    keys = [f"{shard['id']}/{m}" for m in shard["key"]]
    layout.table_dir("scores").mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table([keys, shard["caption"], similarity, sizes, sizes],
                            schema=scores_schema(info, META)), layout.scores(shard["id"]))


def _sources(layout: RunLayout) -> list[tuple[Path, str]]:
    return [(scores, ScoresInfo.from_bytes(pq.read_schema(scores).metadata[b"curate"]).source)
            for scores in layout.shard_files("scores")]


def read_parquet(layout: RunLayout) -> int:
    """Scores and source shards read whole by pyarrow; the scored rows."""
    rows = 0
    for scores, source in _sources(layout):
        rows += pq.read_table(scores).num_rows
        pq.read_table(source)
    return rows


def read_tars(layout: RunLayout) -> int:
    """Scores read by pyarrow, every member of every tar read by a plain `tarfile` stream."""
    rows = 0
    for scores, source in _sources(layout):
        rows += pq.read_table(scores).num_rows
        with tarfile.open(source, "r|") as tar:
            for member in tar:
                tar.extractfile(member).read()
    return rows


def timed(work: Callable[[], int]) -> float:
    """Rows per second of one call."""
    start = time.perf_counter()
    rows = work()
    return rows / (time.perf_counter() - start)


def filter_once(layout: RunLayout, out: Path, fmt: str, criteria: dict) -> int:
    shutil.rmtree(out, ignore_errors=True)
    summary = run_filter(FilterConfig(run_dir=layout.root, out=out, format=fmt, **criteria), quiet=True)
    return summary.manifest.counts.scored


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=40_000)
    parser.add_argument("--shards", type=int, default=4)
    parser.add_argument("--image-px", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3, help="counted rounds, after one warm-up round")
    parser.add_argument("--formats", default="parquet,webdataset", help="source formats to time (comma-separated)")
    args = parser.parse_args()
    formats = args.formats.split(",")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        build = time.perf_counter()
        runs = make_runs(root, rows=args.rows, shards=args.shards, image_px=args.image_px, formats=formats)
        sizes = ", ".join(f"{fmt} {sum(p.stat().st_size for p in (root / f'shards-{fmt}').iterdir()) / 1e6:.1f} MB"
                          for fmt in runs)
        print(f"synthetic runs: {args.rows:,} scored pairs in {args.shards} shards, {args.image_px} px JPEGs "
              f"({sizes}), built in {time.perf_counter() - build:.1f}s")
        bare = {"parquet": ("pyarrow read (parquet)", read_parquet), "webdataset": ("tarfile read (tar)", read_tars)}
        cases: dict[str, Callable[[], int]] = {
            bare[fmt][0]: (lambda fmt=fmt: bare[fmt][1](runs[fmt])) for fmt in formats}
        labels = {"parquet": "parquet -> parquet", "webdataset": "tar -> tar"}
        for name, criteria in CRITERIA.items():
            for fmt, label in ((fmt, labels[fmt]) for fmt in formats):
                cases[f"filter {label} {name}"] = (
                    lambda fmt=fmt, criteria=criteria: filter_once(runs[fmt], root / "subset", fmt, criteria))
        rates = run_rounds(cases, rounds=args.rounds)
        report(rates)


def run_rounds(cases: dict[str, Callable[[], int]], *, rounds: int) -> dict[str, list[float]]:
    """Every case once per round, in turn; the warm-up round is dropped."""
    rates: dict[str, list[float]] = {name: [] for name in cases}
    for number in range(rounds + 1):
        for name, work in cases.items():
            rate = timed(work)
            if number:
                rates[name].append(rate)
        if number:
            print(f"round {number}: " + ", ".join(f"{name} {rates[name][-1]:,.0f}" for name in cases), flush=True)
    return rates


def report(rates: dict[str, list[float]]) -> None:
    medians = {name: statistics.median(values) for name, values in rates.items()}
    bare = {"parquet": medians.get("pyarrow read (parquet)"), "tar": medians.get("tarfile read (tar)")}
    print("\nmedian scored rows/s, and the ratio to the bare read of the same files:")
    for name, median in medians.items():
        base = bare["parquet"] if "parquet ->" in name else bare["tar"] if "tar ->" in name else None
        ratio = f"  ratio {median / base:.2f}" if base else ""
        print(f"  {name:<58} {median:>10,.0f}{ratio}")


if __name__ == "__main__":
    main()
