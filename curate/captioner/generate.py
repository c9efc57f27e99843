"""`curate caption generate`: prompts for image files or subsets, batched, to stdout/CSV/Parquet.

Images are decoded in worker processes while the model runs, encoded by the image tower the
checkpoint names, and decoded into prompts by the captioner (greedy, beam or sampling).
Every input image gives one row: its prompt, or the reason it could not be read.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

import torch

from curate.captioner.card import CaptionerCard
from curate.captioner.config import CaptionGenerateConfig, DecodeConfig
from curate.captioner.data import batched, iter_samples
from curate.captioner.model import Captioner
from curate.captioner.prompt_table import open_prompt_table
from curate.captioner.store import checkpoint_dir, damaged_hint, load_checkpoint
from curate.errors import CurateError
from curate.models.devices import resolve_device
from curate.models.image_encoder import ImageEncoder
from curate.models.preprocess import decode_batch
from curate.runtime.pool import OrderedPool
from curate.schemas.sample import Sample

log = logging.getLogger("curate")
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff"})
COLUMNS = ["key", "prompt", "reference", "error"]


@dataclass
class GeneratedBatch:
    """One batch's samples; `prompts[i]` is None where `errors[i]` says why."""

    samples: list[Sample]
    prompts: list[str | None]
    errors: list[str | None]

    def rows(self) -> list[dict[str, str | None]]:
        return [
            {"key": s.key, "prompt": p, "reference": s.text, "error": e}
            for s, p, e in zip(self.samples, self.prompts, self.errors)
        ]


@dataclass
class GenerateSummary:
    """Counts for the closing log line."""

    prompts: int
    failed: int
    seconds: float
    out: Path | None


def iter_inputs(inputs: Iterable[Path], *, format: str | None = None, limit: int | None = None) -> Iterator[Sample]:
    """Image files as samples keyed by their path, then the samples of any shards or subsets."""
    count = 0
    for path in map(Path, inputs):
        if not path.exists():
            raise CurateError(f"Input path {path} does not exist.")
        if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES and format is None:
            stream: Iterable[Sample] = [Sample(key=str(path), image=path.read_bytes(), text=None)]
        else:
            stream = iter_samples([path], format=format, need_text=False)
        for sample in stream:
            if limit is not None and count >= limit:
                return
            count += 1
            yield sample


class PromptGenerator:
    """A loaded captioner and its image tower, turning batches of samples into prompts."""

    def __init__(self, model_dir: Path, *, device: torch.device, decoding: DecodeConfig) -> None:
        self.model: Captioner
        self.model, self.card, image = load_checkpoint(model_dir, device=device)
        self.card: CaptionerCard
        hint = damaged_hint(checkpoint_dir(model_dir))
        self.encoder = ImageEncoder(image, device=device, hint=hint)
        if self.encoder.dim != self.card.image_dim:
            raise CurateError(
                f"The image model '{image}' gives {self.encoder.dim}-d features but the captioner expects "
                f"{self.card.image_dim}-d: {hint}."
            )
        self.decoding = decoding

    def run(self, samples: Iterator[Sample], *, batch_size: int, workers: int) -> Iterator[GeneratedBatch]:
        """Decode in workers (bounded look-ahead) while the model writes prompts."""
        torch.manual_seed(self.decoding.seed)  # sampling is reproducible run to run
        with OrderedPool(workers) as pool:
            stream = pool.map(decode_batch, batched(samples, batch_size), args=(self.encoder.preprocess,),
                              payload=lambda batch: [s.image for s in batch])
            for batch, decoded in stream:
                prompts: list[str | None] = [None] * len(batch)
                errors: list[str | None] = [None] * len(batch)
                for index, kind, message in decoded.failed:
                    errors[index] = f"{kind}: {message}"
                if decoded.ok:
                    features = torch.from_numpy(self.encoder.encode(decoded.pixels))
                    for index, prompt in zip(decoded.ok, self.model.generate(features, settings=self.decoding)):
                        prompts[index] = prompt
                yield GeneratedBatch(batch, prompts, errors)


def run_caption_generate(config: CaptionGenerateConfig, *, quiet: bool = False) -> GenerateSummary:
    """Write one row per input image: key, prompt, reference (subsets), error."""
    from curate.console import make_progress

    config.validate()
    device = resolve_device(config.device)
    generator = PromptGenerator(config.model, device=device, decoding=config.decoding)
    samples = iter_inputs(config.inputs, format=config.format, limit=config.limit)
    start, done, failed = time.perf_counter(), 0, 0
    with open_prompt_table(config.out, COLUMNS) as table, make_progress(unit="images", quiet=quiet) as progress:
        task = progress.add_task("generate", total=None)
        for batch in generator.run(samples, batch_size=config.batch_size, workers=config.workers):
            table.write(batch.rows())
            done += sum(p is not None for p in batch.prompts)
            failed += sum(e is not None for e in batch.errors)
            progress.advance(task, len(batch.samples))
    if done + failed == 0:
        log.warning("no images found in the inputs")
    return GenerateSummary(prompts=done, failed=failed, seconds=time.perf_counter() - start, out=config.out)
