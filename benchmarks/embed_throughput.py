"""How close `curate embed` comes to the bare model's speed, and whether memory stays flat.

    python benchmarks/embed_throughput.py [--pairs 128] [--batch-size 32] [--image-model DIR --text-model DIR]
    python benchmarks/embed_throughput.py --model DIR_OR_ID          # one CLIP-family checkpoint, both towers
    python benchmarks/embed_throughput.py --shape clip-vit-b32       # a random ViT-B/32-shaped CLIP

Prints, for the same models and machine in one run:
  * bare model forward pairs/s (image + text towers on pre-decoded, pre-read inputs),
  * end-to-end `curate embed` pairs/s (read, decode in workers, encode, write) and the ratio,
  * peak RSS of the embed process at 1x and 4x the data.
Each round runs both sides in a fresh process of their own (model loading excluded from both;
the bare side also leaves out a warm-up batch), so neither is timed in a process that has
already run the model for many rounds while the other starts cold.
Without model arguments it builds encoders of `--shape` with random weights: ResNet-50 and
BERT-base (the defaults), or CLIP ViT-B/32 (`openai/clip-vit-base-patch32`'s shape): the
same compute, no download. Inputs are rendered 384-px JPEGs.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

from curate.io.formats.registry import WRITERS
from curate.schemas.sample import Sample
from curate.synthetic.scenes import render_scene

PROMPT_TAIL = ", highly detailed digital painting, trending on artstation, 8k"
CHILD = """
import json, resource, sys, time
from pathlib import Path
from curate.pipelines.embed import run_embed
from curate.schemas.config.flow import EmbedConfig, EncoderConfig
args = json.loads(sys.argv[1])
enc = EncoderConfig(image_model=args["image"], text_model=args["text"], device="cpu")
if args["image"] == args["text"]:  # one CLIP-family checkpoint: `--model`, loaded once
    enc = EncoderConfig(model=args["image"], device="cpu")
cfg = EmbedConfig(inputs=(Path(args["shards"]),), out=Path(args["out"]), encoders=enc,
                  batch_size=args["batch"], workers=args["workers"])
summary = run_embed(cfg, quiet=True)
print(json.dumps({"pairs": summary.pairs, "seconds": summary.seconds - summary.stages.get("load models", 0.0),
                  "rss_main_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def make_shards(folder: Path, *, pairs: int, per_shard: int = 64) -> Path:
    """Webdataset tars of rendered 384-px JPEG scenes with DiffusionDB-length prompts."""
    for start in range(0, pairs, per_shard):
        with WRITERS["webdataset"](folder / f"{start // per_shard:05d}.tar") as writer:
            for i in range(start, min(start + per_shard, pairs)):
                scene = render_scene(i, size=384, image_format="JPEG")
                text = scene.caption + PROMPT_TAIL
                writer.write(Sample(key=f"{start // per_shard:05d}/{i:06d}", image=scene.image, text=text))
    return folder


def default_models(folder: Path) -> tuple[str, str]:
    """ResNet-50 and BERT-base shapes with random weights (same FLOPs as the defaults)."""
    from transformers import AutoTokenizer, BertConfig, BertModel

    from curate.models.builders import build_bert, build_resnet

    image = build_resnet(folder / "resnet50")
    text = build_bert(folder / "bert-base", words=["a"])  # for its word-level tokenizer (saved as tokenizer.json)
    BertModel(BertConfig(vocab_size=len(AutoTokenizer.from_pretrained(text)))).save_pretrained(text)  # base shape
    return str(image), str(text)


def random_clip(folder: Path) -> tuple[str, str]:
    """CLIP ViT-B/32's shape with random weights; its tokenizer knows the benchmark's words."""
    from curate.models.builders import build_clip

    words = {w.strip(",") for i in range(64) for w in (render_scene(i).caption + PROMPT_TAIL).split()} | {","}
    model = str(build_clip(folder / "clip-vit-b32", words=sorted(words), tiny=False))
    return model, model


SHAPES: dict[str, Callable[[Path], tuple[str, str]]] = {"resnet50-bert": default_models, "clip-vit-b32": random_clip}


def bare_in_fresh_process(image_model: str, text_model: str, shards: Path, *, batch: int) -> float:
    """`bare_forward` timed once in a process of its own, as `curate embed` runs in one."""
    args = [sys.executable, __file__, "--bare-only", "--image-model", image_model, "--text-model", text_model,
            "--shards", str(shards), "--batch-size", str(batch)]
    done = subprocess.run(args, capture_output=True, text=True, check=True)
    return float(done.stdout.strip().splitlines()[-1])


def bare_forward(image_model: str, text_model: str, shards: Path, *, batch: int) -> Callable[[], float]:
    """A timer of the two towers alone on inputs decoded and read beforehand (pairs/s)."""
    from curate.io.formats.detect import find_shards, reader_for
    from curate.models.encoders import load_encoders
    from curate.models.preprocess import decode_batch
    from curate.schemas.config.flow import EncoderConfig

    same = image_model == text_model  # a CLIP-family checkpoint: loaded once, as `--model` does
    config = EncoderConfig(model=image_model, device="cpu") if same else \
        EncoderConfig(image_model=image_model, text_model=text_model, device="cpu")
    encoders = load_encoders(config)
    image, text = encoders.image, encoders.text
    samples = [s for shard in find_shards([shards]) for s in reader_for(shard)]
    batches = [samples[i : i + batch] for i in range(0, len(samples), batch)]
    decoded = [decode_batch([s.image for s in b], image.preprocess).pixels for b in batches]
    image.encode(decoded[0])  # warm-up: first calls pay for thread pools and allocations
    text.encode([s.text for s in batches[0]])

    def timed() -> float:
        start = time.perf_counter()
        for b, pixels in zip(batches, decoded):
            image.encode(pixels)
            text.encode([s.text for s in b])
        return len(samples) / (time.perf_counter() - start)

    return timed


def end_to_end(image_model: str, text_model: str, shards: Path, out: Path, *, batch: int, workers: int) -> dict:
    args = {"image": image_model, "text": text_model, "shards": str(shards), "out": str(out),
            "batch": batch, "workers": workers}
    done = subprocess.run([sys.executable, "-c", CHILD, json.dumps(args)], capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pairs", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--image-model")
    parser.add_argument("--text-model")
    parser.add_argument("--model", help="one CLIP-family checkpoint for both towers (hub id or directory)")
    parser.add_argument("--shape", choices=sorted(SHAPES), default="resnet50-bert",
                        help="random-weight encoders to build when no model is given")
    parser.add_argument("--bare-only", action="store_true", help=argparse.SUPPRESS)  # one bare round, in a child
    parser.add_argument("--shards", help=argparse.SUPPRESS)
    opts = parser.parse_args()
    if opts.bare_only:
        print(bare_forward(opts.image_model, opts.text_model, Path(opts.shards), batch=opts.batch_size)())
        return
    root = Path(tempfile.mkdtemp(prefix="curate-bench-"))
    if opts.model:
        image_model = text_model = opts.model
    elif opts.image_model:
        image_model, text_model = opts.image_model, opts.text_model
    else:
        image_model, text_model = SHAPES[opts.shape](root)
    one = make_shards(root / "x1", pairs=opts.pairs)
    four = make_shards(root / "x4", pairs=4 * opts.pairs)
    bares, rates = [], []
    for round_ in range(opts.rounds):  # interleaved, so load from elsewhere hits both alike
        bares.append(bare_in_fresh_process(image_model, text_model, one, batch=opts.batch_size))
        e2e = end_to_end(image_model, text_model, one, root / f"run1-{round_}", batch=opts.batch_size, workers=opts.workers)
        rates.append(e2e["pairs"] / e2e["seconds"])
    e2e4 = end_to_end(image_model, text_model, four, root / "run4", batch=opts.batch_size, workers=opts.workers)
    bare, rate = statistics.median(bares), statistics.median(rates)
    print(f"models: {Path(image_model).name} + {Path(text_model).name}, batch {opts.batch_size}, "
          f"workers {opts.workers}, {opts.pairs} pairs (384-px JPEG), median of {opts.rounds} interleaved rounds")
    print(f"bare model forward      {bare:8.2f} pairs/s   (rounds: {', '.join(f'{b:.2f}' for b in bares)})")
    print(f"curate embed end-to-end {rate:8.2f} pairs/s   (rounds: {', '.join(f'{r:.2f}' for r in rates)})")
    print(f"ratio                   {rate / bare:8.3f}")
    for label, res in (("1x", e2e), ("4x", e2e4)):
        print(f"peak RSS {label} ({res['pairs']:5d} pairs): {res['rss_main_mb']:7.0f} MiB "
              f"(embed process), {res['pairs'] / res['seconds']:.2f} pairs/s")


if __name__ == "__main__":
    main()
