"""Configs of `curate caption train | generate | eval`, and how prompts are decoded."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from curate.errors import CurateError
from curate.schemas.config.checks import at_least, existing, positive, within
from curate.schemas.config.flow import (
    DEFAULT_IMAGE_MODEL,
    DEFAULT_TEXT_MODEL,
    device_option,
    format_option,
    limit_option,
    workers_option,
)
from curate.schemas.config.options import argument, check_fields, nested, option

DEFAULT_DECODER = "gpt2"
TABLE_SUFFIXES = (".csv", ".parquet")
MODEL_HELP = "A captioner folder (`caption train --out`) or one of its checkpoints."


def check_table_suffix(option_name: str, value: Path | None) -> None:
    if value is not None and Path(value).suffix.lower() not in TABLE_SUFFIXES:
        raise CurateError(f"{option_name} must end in .csv or .parquet (got {Path(value).name}).")


@dataclass(frozen=True)
class DecodeConfig:
    """How `caption generate` and `caption eval` decode prompts: greedy, beam or sampling."""

    max_length: int = option(77, "Most tokens a generated prompt may have.", check=at_least(1))
    num_beams: int = option(1, "Beam search width (1: greedy unless --sample).", check=at_least(1))
    sample: bool = option(False, "Nucleus sampling instead of greedy/beam decoding.", flags=("--sample",))
    top_p: float = option(0.9, "Sampling: keep the smallest token set with this probability mass.",
                          check=within(0, 1, low_open=True))
    temperature: float = option(1.0, "Sampling: softmax temperature.", check=positive)
    repetition_penalty: float = option(1.0, "Penalty on repeated tokens (1.0: none).", check=positive)
    seed: int = option(0, "Sampling seed (same seed, same prompts).", flags=("--seed",))

    def validate(self) -> None:
        check_fields(self)


@dataclass(frozen=True)
class CaptionTrainConfig:
    """Train the captioner on a subset; keeps the best checkpoint by validation loss."""

    subset: Path = argument(Path("subsets/s1"), "A subset folder or shards (any format `curate filter` writes).",
                            check=existing("Subset"))
    out: Path = option(Path("models/captioner"), "Folder for best/ and last/ checkpoints, history.csv, loss.png.",
                       flags=("--out", "-o"), required=True)
    decoder: str = option(DEFAULT_DECODER, "GPT-2-family decoder: hub id or local directory.")
    image_model: str = option(DEFAULT_IMAGE_MODEL, "Image encoder: hub id or local directory.")
    from_embeddings: Path | None = option(None, "Run directory whose stored image_emb vectors replace the image encoder.")
    finetune_image: bool = option(False, "Train the image encoder too (default: frozen).", flags=("--finetune-image",))
    epochs: int = option(20, "Epochs in all (a resumed run trains up to this many).", check=at_least(1))
    batch_size: int = option(32, "Pairs per batch.", check=at_least(1))
    grad_accum: int = option(1, "Batches per optimiser step.", check=at_least(1))
    lr: float = option(5e-5, "Adam learning rate.", check=positive)
    val_fraction: float = option(0.1, "Share of pairs (by key hash) held out for validation.",
                                 check=within(0, 1, low_open=True, high_open=True))
    max_tokens: int = option(77, "Prompt tokens kept for training.", check=at_least(2))
    prefix_hidden: int = 512
    seed: int = option(0, "Seed for initialisation and shuffling.")
    device: str = device_option()
    workers: int = workers_option()
    format: str | None = format_option()
    limit: int | None = limit_option("Use at most this many pairs (for a quick try).")
    resume: bool = option(False, "Continue from OUT/last/ (optimiser and RNG state included).", flags=("--resume",))
    overwrite: bool = option(False, "Discard a captioner already in OUT.", flags=("--overwrite",))

    def validate(self) -> None:
        if self.from_embeddings is not None and self.finetune_image:
            raise CurateError("--from-embeddings reuses frozen image vectors; it cannot be combined with --finetune-image.")
        if self.resume and self.overwrite:
            raise CurateError("--resume continues a training run and --overwrite discards it; pass one of them.")
        check_fields(self)


@dataclass(frozen=True)
class CaptionGenerateConfig:
    """Write a prompt for every image: key, prompt, reference (from subsets), error."""

    model: Path = argument(Path("models/captioner"), MODEL_HELP)
    inputs: tuple[Path, ...] = argument((), "Image files, or subset folders and shards.")
    out: Path | None = option(None, "Write .csv or .parquet here (default: CSV on stdout).", flags=("--out", "-o"),
                              check=check_table_suffix)
    decoding: DecodeConfig = nested(DecodeConfig)
    batch_size: int = option(32, "Images per batch.", check=at_least(1))
    device: str = device_option()
    workers: int = workers_option()
    format: str | None = format_option()
    limit: int | None = limit_option("Caption at most this many images.")

    def validate(self) -> None:
        if not self.inputs:
            raise CurateError("Give at least one INPUT: image files, or subset shards or folders.")
        check_fields(self)


@dataclass(frozen=True)
class CaptionEvalConfig:
    """BLEU, METEOR and embedding cosine of generated vs reference prompts (+ alignment under --projection)."""

    model: Path = argument(Path("models/captioner"), MODEL_HELP)
    subset: Path = argument(Path("subsets/heldout"), "Held-out pairs: a subset folder or shards.",
                            check=existing("Subset"))
    decoding: DecodeConfig = nested(DecodeConfig)
    text_model: str = option(DEFAULT_TEXT_MODEL, "Text encoder for the prompt-embedding cosine.")
    text_pooling: str = "mean"
    projection: Path | None = option(None, "Projection folder: also score generated prompts against their images.")
    batch_size: int = option(32, "Pairs per batch.", check=at_least(1))
    device: str = device_option()
    workers: int = workers_option()
    format: str | None = format_option()
    limit: int | None = limit_option("Evaluate at most this many pairs.")
    json: bool = option(False, "Print the figures as JSON instead of a table.", flags=("--json",))
    out: Path | None = option(None, "Per-pair figures to this .csv or .parquet.", flags=("--out", "-o"),
                              check=check_table_suffix)

    def validate(self) -> None:
        check_fields(self)
