"""`curate caption eval`: generated prompts against a subset's own, as figures and per-pair rows.

For each pair of the subset the captioner writes a prompt; the run reports corpus BLEU-4,
mean METEOR (exact match), the mean cosine of sentence embeddings of generated and
reference prompts (the tool's own text encoder), and, under `--projection`, the alignment
of generated prompts with their images next to that of the reference prompts.
"""

from __future__ import annotations

import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from curate.captioner.config import CaptionEvalConfig
from curate.captioner.data import iter_samples
from curate.captioner.generate import GeneratedBatch, PromptGenerator
from curate.captioner.prompt_table import open_prompt_table
from curate.models.alignment import AlignmentScorer
from curate.models.devices import resolve_device
from curate.models.text_encoder import TextEncoder
from curate.text_metrics import (
    corpus_bleu,
    mean_meteor,
    meteor,
    rowwise_cosine,
    sentence_bleu,
)

PAIR_COLUMNS = ["key", "reference", "prompt", "bleu", "meteor", "cosine", "alignment", "reference_alignment"]


@dataclass
class CaptionEvalSummary:
    """The figures `eval` prints as a table or JSON."""

    pairs: int
    failed: int
    bleu: float
    meteor: float
    cosine: float
    alignment: float | None
    reference_alignment: float | None
    text_model: str
    projection: str | None
    decoding: dict[str, Any]
    seconds: float

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class _Collected:
    generated: list[str] = field(default_factory=list)
    references: list[str] = field(default_factory=list)
    cosines: list[np.ndarray] = field(default_factory=list)
    alignments: list[np.ndarray] = field(default_factory=list)
    reference_alignments: list[np.ndarray] = field(default_factory=list)
    failed: int = 0


def _mean(parts: list[np.ndarray]) -> float | None:
    values = np.concatenate(parts) if parts else np.zeros(0)
    values = values[~np.isnan(values)]
    return float(values.mean()) if len(values) else None


def _score_batch(
    batch: GeneratedBatch, *, text: TextEncoder, scorer: AlignmentScorer | None, into: _Collected
) -> list[dict[str, Any]]:
    """Per-pair figures for one batch; pairs whose image failed are counted, not scored."""
    ok = [i for i, p in enumerate(batch.prompts) if p is not None]
    into.failed += len(batch.samples) - len(ok)
    generated = [batch.prompts[i] or "" for i in ok]
    references = [batch.samples[i].text or "" for i in ok]
    if not ok:
        return []
    cosine = rowwise_cosine(text.encode(generated), text.encode(references))
    nan = np.full(len(ok), np.nan, dtype=np.float32)
    aligned, ref_aligned = nan, nan
    if scorer is not None:
        vectors = scorer.image_vectors([batch.samples[i].image for i in ok])  # type: ignore[misc]
        aligned, ref_aligned = scorer.similarity(vectors, generated), scorer.similarity(vectors, references)
    into.generated += generated
    into.references += references
    into.cosines.append(cosine)
    into.alignments.append(aligned)
    into.reference_alignments.append(ref_aligned)
    return [
        {"key": batch.samples[i].key, "reference": r, "prompt": g, "bleu": sentence_bleu(g, r), "meteor": meteor(g, r),
         "cosine": float(c), "alignment": None if np.isnan(a) else float(a),
         "reference_alignment": None if np.isnan(b) else float(b)}
        for i, g, r, c, a, b in zip(ok, generated, references, cosine, aligned, ref_aligned)
    ]


def run_caption_eval(config: CaptionEvalConfig, *, quiet: bool = False) -> CaptionEvalSummary:
    """Generate for every pair of the subset and compare with its reference prompt."""
    from curate.console import make_progress

    config.validate()
    device = resolve_device(config.device)
    generator = PromptGenerator(config.model, device=device, decoding=config.decoding)
    text = TextEncoder(config.text_model, device=device, pooling=config.text_pooling)
    scorer = AlignmentScorer(config.projection, device=device) if config.projection else None
    samples = iter_samples([Path(config.subset)], format=config.format)
    if config.limit is not None:
        samples = (s for n, s in enumerate(samples) if n < config.limit)
    start, got = time.perf_counter(), _Collected()
    pair_table = open_prompt_table(config.out, PAIR_COLUMNS) if config.out else nullcontext()
    with pair_table as table, make_progress(unit="pairs", quiet=quiet) as progress:
        task = progress.add_task("eval", total=None)
        for batch in generator.run(samples, batch_size=config.batch_size, workers=config.workers):
            rows = _score_batch(batch, text=text, scorer=scorer, into=got)
            if table is not None:
                table.write(rows)
            progress.advance(task, len(batch.samples))
    return _summary(got, config, seconds=time.perf_counter() - start)


def _summary(got: _Collected, config: CaptionEvalConfig, *, seconds: float) -> CaptionEvalSummary:
    from curate.errors import CurateError

    if not got.generated:
        raise CurateError(f"No pair of {config.subset} could be captioned ({got.failed} unreadable images).")
    return CaptionEvalSummary(
        pairs=len(got.generated), failed=got.failed, bleu=corpus_bleu(got.generated, got.references),
        meteor=mean_meteor(got.generated, got.references), cosine=_mean(got.cosines) or 0.0,
        alignment=_mean(got.alignments), reference_alignment=_mean(got.reference_alignments),
        text_model=config.text_model, projection=str(config.projection) if config.projection else None,
        decoding=asdict(config.decoding), seconds=seconds,
    )
