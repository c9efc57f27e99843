"""What torch's thread count does to a local `curate embed` that also runs decode processes.

    python benchmarks/cpu_threads.py [--pairs 256] [--rounds 3] [--workers N] [--models tiny|base]

Runs the same embed job in a fresh process per run, interleaved over rounds, three ways:
  * `cores left`: torch's intra-op threads = cores - decode processes (what curate once did);
  * `all cores`: what curate does (torch's own default), one thread per usable core;
  * `OMP_NUM_THREADS=1`: one model thread, whatever the machine (what a 1-CPU Ray worker gets).
Prints each run's wall time (process start to exit: imports, model load, the run) and the
run's own seconds and pairs/s (its bar's clock, model loading included). `tiny` are the
tests' small encoders (the job of the report that found the oversubscription); `base` are
ResNet-50- and BERT-base-shaped ones with random weights.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from embed_throughput import default_models, make_shards  # same folder: shared fixtures

CHILD = """
import json, sys
from pathlib import Path
import curate.runtime.threads as threads
from curate.pipelines.embed import run_embed
from curate.schemas.config.flow import EmbedConfig, EncoderConfig
args = json.loads(sys.argv[1])
if args["mode"] == "cores left":  # one core per decode process taken from the model
    usable = threads.usable_cores
    threads.usable_cores = lambda: max(1, usable() - args["workers"])
enc = EncoderConfig(image_model=args["image"], text_model=args["text"], device="cpu")
cfg = EmbedConfig(inputs=(Path(args["shards"]),), out=Path(args["out"]), encoders=enc, batch_size=args["batch"],
                  workers=args["workers"])
summary = run_embed(cfg, quiet=True)
print(json.dumps({"pairs": summary.pairs, "seconds": summary.seconds}))
"""
MODES = ("all cores", "cores left", "OMP_NUM_THREADS=1")


def tiny_models(folder: Path) -> tuple[str, str]:
    from curate.models.builders import build_bert, build_resnet

    image = build_resnet(folder / "image", tiny=True)
    text = build_bert(folder / "text", words="a red blue green circle square triangle on grey".split())
    return str(image), str(text)


def run_once(mode: str, models: tuple[str, str], shards: Path, out: Path, opts: argparse.Namespace) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    if mode == "OMP_NUM_THREADS=1":
        env["OMP_NUM_THREADS"] = "1"
    args = dict(mode=mode, image=models[0], text=models[1], shards=str(shards), out=str(out), batch=opts.batch_size,
                workers=opts.workers)
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", CHILD, json.dumps(args)], capture_output=True, text=True, env=env,
                          check=True)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return {**result, "wall": time.perf_counter() - start}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pairs", type=int, default=256)
    parser.add_argument("--per-shard", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=max(1, (os.cpu_count() or 2) - 1), help="decode processes")
    parser.add_argument("--models", choices=("tiny", "base"), default="tiny")
    opts = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="curate-threads-"))
    models = tiny_models(root / "models") if opts.models == "tiny" else default_models(root / "models")
    shards = make_shards(root / "shards", pairs=opts.pairs, per_shard=opts.per_shard)
    print(f"{opts.models} models, {opts.pairs} pairs, batch {opts.batch_size}, {opts.workers} decode processes, "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    runs: dict[str, list[dict]] = {mode: [] for mode in MODES}
    for round_ in range(opts.rounds):
        for mode in MODES:
            runs[mode].append(run_once(mode, models, shards, root / f"out-{round_}-{len(runs[mode])}-{mode[:3]}", opts))
    for mode, results in runs.items():
        walls = [r["wall"] for r in results]
        rates = [r["pairs"] / r["seconds"] for r in results]
        print(f"{mode:18s} wall median {statistics.median(walls):6.1f} s "
              f"(rounds {', '.join(f'{w:.1f}' for w in walls)})  run {statistics.median(rates):7.1f} pairs/s "
              f"(rounds {', '.join(f'{r:.1f}' for r in rates)})")
    print(f"load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
