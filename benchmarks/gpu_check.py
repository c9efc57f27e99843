"""The GPU run, ready to go: bare model forward vs `curate embed` end to end, with GPU utilisation.

    benchmarks/gpu_check.sh [WHEELS_DIR]        # installs curate, then runs this file
    python benchmarks/gpu_check.py              # curate already importable

Builds synthetic WebDataset shards (rendered JPEG scenes with prompt-length captions), then
for each model shape (ResNet-50 + BERT-base, and a ViT-B/32-shaped CLIP through `--model`),
with random weights (the same compute as the real checkpoints, nothing downloaded), prints:
  * bare forward pairs/s: both towers on pre-decoded, pre-read batches, the encoders' own
    `encode` (on CUDA: autocast bf16, channels_last for the convolution backbone);
  * `curate embed` end to end (`python -m curate.cli embed ... --device D --workers W`, the
    command users run) pairs/s, over the run's wall clock less model loading, and the ratio;
  * GPU utilisation sampled by `nvidia-smi` every 200 ms during the end-to-end run (mean and
    median; "not sampled" without nvidia-smi).
Sizes and device come from the environment, so the same file runs here on CPU with tiny sizes:
  CURATE_GPU_DEVICE (cuda), CURATE_GPU_PAIRS (20000), CURATE_GPU_IMAGE_PX (512),
  CURATE_GPU_BATCH (256), CURATE_GPU_WORKERS (14), CURATE_GPU_BARE_BATCHES (20),
  CURATE_GPU_SHAPES (resnet50-bert,clip-vit-b32), CURATE_GPU_TINY (0: full-size models),
  CURATE_GPU_DIR (a temporary folder).
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

PROMPT_TAIL = ", highly detailed digital painting, trending on artstation, octane render, 8k, sharp focus"
DISTINCT_IMAGES = 256  # rendered once, reused: rendering is not what is measured
PER_SHARD = 1000


@dataclass(frozen=True)
class Settings:
    device: str
    pairs: int
    image_px: int
    batch: int
    workers: int
    bare_batches: int
    shapes: tuple[str, ...]
    tiny: bool

    @classmethod
    def from_env(cls) -> "Settings":
        env = os.environ.get
        return cls(device=env("CURATE_GPU_DEVICE", "cuda"), pairs=int(env("CURATE_GPU_PAIRS", "20000")),
                   image_px=int(env("CURATE_GPU_IMAGE_PX", "512")), batch=int(env("CURATE_GPU_BATCH", "256")),
                   workers=int(env("CURATE_GPU_WORKERS", "14")),
                   bare_batches=int(env("CURATE_GPU_BARE_BATCHES", "20")),
                   shapes=tuple(env("CURATE_GPU_SHAPES", "resnet50-bert,clip-vit-b32").split(",")),
                   tiny=env("CURATE_GPU_TINY", "0") == "1")


def make_shards(folder: Path, settings: Settings) -> tuple[Path, list[str]]:
    """Tars of `pairs` JPEG pairs written by curate's own writer; the words of the captions."""
    from curate.io.formats.registry import WRITERS
    from curate.schemas.sample import Sample
    from curate.synthetic.scenes import render_scene

    scenes = [render_scene(i, size=settings.image_px, image_format="JPEG") for i in range(DISTINCT_IMAGES)]
    folder.mkdir(parents=True, exist_ok=True)
    for start in range(0, settings.pairs, PER_SHARD):
        shard = f"{start // PER_SHARD:05d}"
        with WRITERS["webdataset"](folder / f"{shard}.tar") as writer:
            for i in range(start, min(start + PER_SHARD, settings.pairs)):
                scene = scenes[i % DISTINCT_IMAGES]
                writer.write(Sample(key=f"{shard}/{i:09d}", image=scene.image, text=scene.caption + PROMPT_TAIL))
    words = sorted({w.strip(",") for s in scenes for w in (s.caption + PROMPT_TAIL).split()} | {","})
    return folder, words


def resnet_bert(folder: Path, words: list[str], *, tiny: bool) -> list[str]:
    """ResNet-50 + BERT-base shapes (or tiny ones): the `--image-model/--text-model` options."""
    from curate.models.builders import build_bert, build_resnet

    image = build_resnet(folder / "resnet", tiny=tiny)
    text = build_bert(folder / "bert", words=words)
    if not tiny:  # BERT-base's shape over the captions' word-level vocabulary
        from transformers import AutoTokenizer, BertConfig, BertModel

        BertModel(BertConfig(vocab_size=len(AutoTokenizer.from_pretrained(text)))).save_pretrained(text)
    return ["--image-model", str(image), "--text-model", str(text)]


def clip_vit_b32(folder: Path, words: list[str], *, tiny: bool) -> list[str]:
    """A ViT-B/32-shaped CLIP (or a tiny one): the `--model` option."""
    from curate.models.builders import build_clip

    return ["--model", str(build_clip(folder / "clip", words=words, tiny=tiny))]


SHAPES: dict[str, Callable[..., list[str]]] = {"resnet50-bert": resnet_bert, "clip-vit-b32": clip_vit_b32}


def bare_forward(model_args: list[str], shards: Path, settings: Settings) -> float:
    """Pairs/s of the two towers' `encode` on batches decoded and read beforehand."""
    import torch

    from curate.io.formats.detect import find_shards, reader_for
    from curate.models.encoders import load_encoders
    from curate.models.preprocess import decode_batch
    from curate.schemas.config.flow import EncoderConfig

    options = dict(zip(model_args[::2], model_args[1::2]))
    config = EncoderConfig(model=options["--model"], device=settings.device) if "--model" in options else \
        EncoderConfig(image_model=options["--image-model"], text_model=options["--text-model"], device=settings.device)
    encoders = load_encoders(config)
    samples = []
    for shard in find_shards([shards]):
        samples += [s for s in reader_for(shard)][: settings.batch - len(samples)]
        if len(samples) >= settings.batch:
            break
    pixels = decode_batch([s.image for s in samples], encoders.image.preprocess).pixels
    texts = [s.text for s in samples]
    for _ in range(2):  # warm-up: kernels chosen, memory pools filled
        encoders.image.encode(pixels)
        encoders.text.encode(texts)
    if settings.device.startswith("cuda"):
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(settings.bare_batches):
        encoders.image.encode(pixels)  # returns host arrays: each call waits for the GPU
        encoders.text.encode(texts)
    return settings.bare_batches * len(samples) / (time.perf_counter() - start)


class Utilisation:
    """`nvidia-smi` sampled in the background while a run goes on."""

    def __init__(self) -> None:
        self.samples: list[float] = []
        self._process: subprocess.Popen | None = None
        self._reader: threading.Thread | None = None

    def __enter__(self) -> "Utilisation":
        if shutil.which("nvidia-smi"):
            self._process = subprocess.Popen(
                ["nvidia-smi", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits", "-lms", "200"],
                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            self._reader = threading.Thread(target=self._read, daemon=True)
            self._reader.start()
        return self

    def _read(self) -> None:
        for line in self._process.stdout:  # type: ignore[union-attr]
            first = line.strip().split(",")[0].strip()
            if first.isdigit():
                self.samples.append(float(first))

    def __exit__(self, *_: object) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.wait()
            self._reader.join(2)  # type: ignore[union-attr]

    def describe(self) -> str:
        if not self.samples:
            return "not sampled (no nvidia-smi)" if self._process is None else "no samples"
        return (f"mean {statistics.mean(self.samples):.0f}%, median {statistics.median(self.samples):.0f}% "
                f"over {len(self.samples)} samples")


def end_to_end(model_args: list[str], shards: Path, out: Path, settings: Settings) -> tuple[float, Utilisation]:
    """`curate embed` as users run it; pairs/s over its wall clock less the model loading it reports."""
    command = [sys.executable, "-m", "curate.cli", "embed", str(shards), "-o", str(out), *model_args,
               "--device", settings.device, "--workers", str(settings.workers),
               "--batch-size", str(settings.batch), "--quiet"]
    with Utilisation() as utilisation:
        start = time.perf_counter()
        subprocess.run(command, check=True)
        wall = time.perf_counter() - start
    load = _model_load_seconds(out)
    pairs = _pairs_embedded(out)
    if pairs != settings.pairs:
        raise SystemExit(f"curate embed wrote {pairs} pairs, expected {settings.pairs}")
    return pairs / max(wall - load, 1e-9), utilisation


def _pairs_embedded(run: Path) -> int:
    import pyarrow.parquet as pq

    return sum(pq.read_metadata(p).num_rows for p in sorted((run / "embeddings").glob("*.parquet")))


def _model_load_seconds(run: Path) -> float:
    """The 'load models' stage the run recorded in its stats files (carried by its first shard)."""
    return sum(float(json.loads(path.read_text()).get("stages", {}).get("load models", 0.0))
               for path in (run / "stats" / "embed").glob("*.json"))


def main() -> None:
    settings = Settings.from_env()
    root = Path(os.environ.get("CURATE_GPU_DIR") or tempfile.mkdtemp(prefix="curate-gpu-check-"))
    started = time.perf_counter()
    shards, words = make_shards(root / "shards", settings)
    print(f"device {settings.device}: {settings.pairs:,} pairs of {settings.image_px}-px JPEGs with prompt-length "
          f"captions in {shards} (built in {time.perf_counter() - started:.0f}s); batch {settings.batch}, "
          f"{settings.workers} decode workers", flush=True)
    for shape in settings.shapes:
        model_args = SHAPES[shape](root / "models" / shape, words, tiny=settings.tiny)
        bare = bare_forward(model_args, shards, settings)
        e2e, utilisation = end_to_end(model_args, shards, root / f"run-{shape}", settings)
        print(f"{shape}: bare forward {bare:,.0f} pairs/s; curate embed end to end {e2e:,.0f} pairs/s; "
              f"ratio {e2e / bare:.2f}; GPU utilisation {utilisation.describe()}", flush=True)
    print(f"total {time.perf_counter() - started:.0f}s")


if __name__ == "__main__":
    main()
