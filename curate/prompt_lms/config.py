"""Configs of `curate prompts prepare | train concept | train upsample | generate | eval`."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from curate.errors import CurateError
from curate.schemas.config.checks import at_least, each, not_blank, one_of, positive, within
from curate.schemas.config.flow import DEFAULT_TEXT_MODEL, device_option
from curate.schemas.config.options import (
    argument,
    check_fields,
    nested,
    option,
    redefault,
)

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
MODEL_HELP = "A folder `curate prompts train` wrote."


@dataclass(frozen=True)
class PromptTags:
    """The start/end tags wrapped around prompts so a causal LM learns whole prompts."""

    start: str = option("<|startofprompt|>", "Tag opening every prompt.", flags=("--start-tag",))
    end: str = option("<|endofprompt|>", "Tag closing every prompt.", flags=("--end-tag",))

    def validate(self) -> None:
        if not self.start.strip() or not self.end.strip() or self.start == self.end:
            raise CurateError("--start-tag and --end-tag must be two different non-empty strings.")


@dataclass(frozen=True)
class PromptsPrepareConfig:
    """Clean, dedup, blocklist, tag and split prompts; reports what was removed and why."""

    inputs: tuple[Path, ...] = argument(
        (), "A subset folder, shards, or CSV/Parquet/`datasets` tables of prompts or pairs.")
    out: Path = option(Path("data/prompts"), "Folder for train/validation/test.parquet and prompts-report.json.",
                       flags=("--out", "-o"), required=True)
    blocklist: Path | None = option(None, "Word list (one term per line) replacing the shipped one.")
    tags: PromptTags = nested(PromptTags)
    validation_fraction: float = option(0.05, "Share of prompts held out for validation.",
                                        check=within(0, 1, high_open=True))
    test_fraction: float = option(0.05, "Share of prompts held out for testing.", check=within(0, 1, high_open=True))
    text_column: str | None = option(None, "Table column with the (detailed) prompt.")
    plain_column: str | None = option(None, "Table column with the basic prompt of a pair.")
    min_words: int = option(1, "Drop prompts with fewer words.", check=at_least(1))
    overwrite: bool = option(False, "Redo a folder that is already prepared.")

    def validate(self) -> None:
        if not self.inputs:
            raise CurateError("Give at least one INPUT: a subset folder, shards, or a CSV/Parquet of prompts.")
        check_fields(self)
        if self.validation_fraction + self.test_fraction >= 1.0:
            raise CurateError("--validation-fraction plus --test-fraction must leave some prompts to train on.")
        self.tags.validate()


@dataclass(frozen=True)
class PromptTrainConfig:
    """Options both `curate prompts train` recipes share; each recipe sets its own defaults."""

    recipe: str = "concept"
    data: tuple[Path, ...] = argument((), "A folder `prompts prepare` wrote, or a subset/table to prepare first.")
    out: Path = option(Path("models/prompts"), "Model folder: best model, card.json, curves, checkpoints/last.",
                       flags=("--out", "-o"), required=True)
    base: str = option("gpt2", "Base model: hub id or local directory.")
    epochs: int = option(3, check=at_least(1))
    batch_size: int = option(8, check=at_least(1))
    grad_accum: int = option(4, "Batches per optimizer step.", check=at_least(1))
    lr: float = option(5e-5, "Peak learning rate (linear warm-up and decay).", check=positive)
    weight_decay: float = 0.0
    warmup_fraction: float = 0.05
    max_tokens: int = option(128, "Texts are truncated to this many tokens.", check=at_least(8))
    trainable_layers: int | None = option(None, "Train only the top N blocks (0: every layer, embeddings included).",
                                          check=at_least(0))
    precision: str = option("auto", "auto, fp32, bf16 or fp16 (fp16: concept only).", check=one_of(PRECISIONS))
    eval_samples: int = option(16, "Validation prompts generated for each epoch and scored with METEOR (0: none).",
                               check=at_least(0))
    device: str = device_option()
    seed: int = option(0)
    resume: bool = option(False, "Continue from OUT/checkpoints/last.")
    log_every: int = 10  # optimizer steps between train-loss log rows
    prefix: str = ""

    def validate(self) -> None:
        if not self.data:
            raise CurateError("Give DATA: a folder `curate prompts prepare` wrote, or a subset/table of prompts.")
        check_fields(self)
        if self.log_every < 1:
            raise CurateError(f"log_every must be at least 1 (got {self.log_every}).")
        if not 0.0 <= self.warmup_fraction < 1.0:
            raise CurateError(f"warmup_fraction must lie in [0, 1) (got {self.warmup_fraction}).")


@dataclass(frozen=True)
class ConceptTrainConfig(PromptTrainConfig):
    """Fine-tune a causal LM (GPT-2) to write a whole tagged prompt after `<start> subject`.

    Only the top `trainable_layers` blocks learn, as in the recipe (it froze 42 of gpt2-xl's
    48 blocks); on gpt2's 12 blocks the default trains the top 6.
    """

    recipe: str = "concept"
    base: str = redefault(PromptTrainConfig, "base", "gpt2")
    epochs: int = redefault(PromptTrainConfig, "epochs", 3)
    lr: float = redefault(PromptTrainConfig, "lr", 5e-5)
    batch_size: int = redefault(PromptTrainConfig, "batch_size", 8)
    grad_accum: int = redefault(PromptTrainConfig, "grad_accum", 4)
    trainable_layers: int | None = redefault(PromptTrainConfig, "trainable_layers", 6)
    max_tokens: int = redefault(PromptTrainConfig, "max_tokens", 96)


@dataclass(frozen=True)
class UpsampleTrainConfig(PromptTrainConfig):
    """Fine-tune a seq2seq model (FLAN-T5) to turn plain prompts into detailed ones."""

    recipe: str = "upsample"
    base: str = redefault(PromptTrainConfig, "base", "google/flan-t5-base")
    epochs: int = redefault(PromptTrainConfig, "epochs", 5)
    lr: float = redefault(PromptTrainConfig, "lr", 3e-4)
    batch_size: int = redefault(PromptTrainConfig, "batch_size", 8)
    grad_accum: int = redefault(PromptTrainConfig, "grad_accum", 8)
    trainable_layers: int | None = redefault(PromptTrainConfig, "trainable_layers", 0)
    max_tokens: int = redefault(PromptTrainConfig, "max_tokens", 128)
    prefix: str = "translate basic prompt to detailed longer prompt: "


@dataclass(frozen=True)
class GenerationSettings:
    """Decoding options; `max_length`/`min_length` count new tokens."""

    max_length: int = 77
    min_length: int = 0
    temperature: float = 0.9
    top_p: float = 0.95
    repetition_penalty: float = 1.2

    def validate(self) -> None:
        if self.max_length < 1 or self.min_length < 0 or self.min_length > self.max_length:
            raise CurateError(
                f"Need 0 <= --min-length <= --max-length and --max-length >= 1 (got {self.min_length}, {self.max_length})."
            )
        positive("--temperature", self.temperature)
        within(0, 1, low_open=True)("--top-p", self.top_p)
        at_least(1.0)("--repetition-penalty", self.repetition_penalty)


# Each recipe's decoding defaults: the upsampler's follow the recipe (at least 40 new tokens,
# repetition penalty 1.4); the concept model's are the usual sampling settings for GPT-2.
RECIPE_GENERATION = {
    "concept": GenerationSettings(max_length=77, min_length=0, temperature=0.9, top_p=0.95, repetition_penalty=1.2),
    "upsample": GenerationSettings(max_length=128, min_length=40, temperature=0.7, top_p=0.9, repetition_penalty=1.4),
}


def recipe_settings(recipe: str, overrides: object) -> GenerationSettings:
    """A recipe's decoding defaults with the non-None same-named fields of `overrides` laid over."""
    names = ("max_length", "min_length", "temperature", "top_p", "repetition_penalty")
    given = {k: getattr(overrides, k, None) for k in names}
    return replace(RECIPE_GENERATION[recipe], **{k: v for k, v in given.items() if v is not None})


@dataclass(frozen=True)
class PromptsGenerateConfig:
    """Write prompts: `curate prompts generate models/concept2prompt "a lighthouse" -n 5`.

    Decoding options left unset take the recipe's defaults.
    """

    model: Path = argument(Path("models/prompts"), MODEL_HELP)
    texts: tuple[str, ...] = argument((), "Subjects (concept model) or plain prompts (upsampler).",
                                      check=each(not_blank))
    num: int = option(1, "Prompts per text.", flags=("-n", "--num"), check=at_least(1))
    max_length: int | None = option(None, "Most new tokens (default: the recipe's).")
    min_length: int | None = option(None, "Fewest new tokens (default: the recipe's; upsample 40).")
    temperature: float | None = option(None, "Sampling temperature (default: the recipe's).")
    top_p: float | None = option(None, "Nucleus sampling mass (default: the recipe's).")
    repetition_penalty: float | None = option(None, "Default: the recipe's (upsample 1.4).")
    seed: int = option(0)
    batch_size: int = option(16, "Texts per generation batch.", check=at_least(1))
    device: str = device_option()
    out: Path | None = option(None, "Write prompts to this file instead of stdout.", flags=("--out", "-o"))
    blocklist: Path | None = option(None, "Word list replacing the model's (default: the one its data was "
                                    "prepared with).")

    def settings(self, recipe: str) -> GenerationSettings:
        """The recipe's defaults with every option the user gave laid over them."""
        return recipe_settings(recipe, self)

    def validate(self) -> None:
        if not self.texts:
            raise CurateError("Give at least one TEXT: a subject (concept model) or a plain prompt (upsampler).")
        check_fields(self)


@dataclass(frozen=True)
class PromptsEvalConfig:
    """Score generations: BERTScore, METEOR, length, distinct-n, subject faithfulness."""

    model: Path = argument(Path("models/prompts"), MODEL_HELP)
    data: Path = argument(Path("data/prompts/test.parquet"),
                          "A prepared table (e.g. data/prompts/test.parquet) or its folder.")
    score_model: str = option(DEFAULT_TEXT_MODEL, "BERTScore encoder: hub id or local directory.")
    limit: int = option(200, "Held-out prompts used (upsample).", check=at_least(1))
    subjects: int = option(20, "Subjects generated for (concept).", check=at_least(1))
    num: int = option(2, "Generations per input.", flags=("-n", "--num"), check=at_least(1))
    seed: int = option(0)
    batch_size: int = option(16, check=at_least(1))
    device: str = device_option()
    json: bool = option(False, "Print the result as JSON instead of a table.", flags=("--json",))
    max_length: int | None = option(None, "Most new tokens (default: the recipe's).")
    min_length: int | None = option(None, "Fewest new tokens (default: the recipe's; upsample 40).")

    def settings(self, recipe: str) -> GenerationSettings:
        return recipe_settings(recipe, self)

    def validate(self) -> None:
        check_fields(self)


