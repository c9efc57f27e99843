"""One config model per command. The CLI's options map onto these; defaults live here only."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from curate.errors import CurateError
from curate.io.location import Location, check_backend, location, refuse_urls
from curate.models.preprocess import DEFAULT_MAX_PIXELS
from curate.runtime.pool import default_workers

DEFAULT_IMAGE_MODEL = "microsoft/resnet-50"
DEFAULT_TEXT_MODEL = "bert-base-uncased"


def set_locations(config: object, *names: str) -> None:
    """Turn the typed paths of a frozen config into `Path`s or `RemotePath`s (for URLs)."""
    for name in names:
        value = getattr(config, name)
        typed = tuple(location(v) for v in value) if isinstance(value, (tuple, list)) else location(value)
        object.__setattr__(config, name, typed)


@dataclass(frozen=True)
class EncoderConfig:
    """Which encoders embed a run, and how; shared by `embed` and `score`."""

    image_model: str = DEFAULT_IMAGE_MODEL
    text_model: str = DEFAULT_TEXT_MODEL
    text_pooling: str = "mean"
    max_text_tokens: int = 77
    device: str = "auto"

    def validate(self) -> None:
        if self.max_text_tokens < 1:
            raise CurateError("--max-text-tokens must be at least 1.")


@dataclass(frozen=True)
class ExecutorConfig:
    """Where a command's shards run: `local` (this process) or `ray` (a cluster's workers).

    The resource fields apply to Ray only; each Ray worker holds one copy of the models.
    """

    name: str = "local"
    ray_address: str | None = None  # None: RAY_ADDRESS if set, else start a local Ray instance
    num_cpus_per_worker: float = 1.0
    num_gpus_per_worker: float = 0.0
    concurrency: int | None = None  # Ray workers; None: as many as the cluster's resources fit
    max_retries: int = 3  # restarts of a dead worker, each retrying the shard it held

    def validate(self) -> None:
        from curate.runtime.executors import EXECUTORS

        if self.name not in EXECUTORS:
            raise CurateError(f"Unknown --executor '{self.name}'; known: {', '.join(sorted(EXECUTORS))}.")
        if self.num_cpus_per_worker < 0 or self.num_gpus_per_worker < 0:
            raise CurateError("--num-cpus-per-worker and --num-gpus-per-worker must be 0 or more.")
        if self.num_cpus_per_worker == 0 and self.num_gpus_per_worker == 0:
            raise CurateError("A Ray worker needs some resource: give --num-cpus-per-worker or --num-gpus-per-worker above 0.")
        if self.concurrency is not None and self.concurrency < 1:
            raise CurateError(f"--concurrency must be at least 1 (got {self.concurrency}).")
        if self.max_retries < 0:
            raise CurateError(f"--max-retries must be 0 or more (got {self.max_retries}).")


@dataclass(frozen=True)
class EmbedConfig:
    """`curate embed INPUT... --out RUN_DIR`."""

    inputs: tuple[Location, ...] = ()  # local paths or URLs (str accepted)
    out: Location = Path("runs/r1")
    encoders: EncoderConfig = field(default_factory=EncoderConfig)
    batch_size: int = 64
    workers: int = field(default_factory=default_workers)
    format: str | None = None
    limit: int | None = None
    overwrite: bool = False
    max_pixels: int = DEFAULT_MAX_PIXELS
    executor: ExecutorConfig = field(default_factory=ExecutorConfig)

    def __post_init__(self) -> None:
        set_locations(self, "inputs", "out")

    def validate(self) -> None:
        """Refuse values no run could use, with the option's name in the message."""
        if not self.inputs:
            raise CurateError("Give at least one INPUT shard file or directory.")
        check_backend(self.out)
        if self.batch_size < 1:
            raise CurateError(f"--batch-size must be at least 1 (got {self.batch_size}).")
        if self.workers < 0:
            raise CurateError(f"--workers must be 0 (decode in the main process) or more (got {self.workers}).")
        if self.limit is not None and self.limit < 1:
            raise CurateError(f"--limit must be at least 1 (got {self.limit}).")
        self.encoders.validate()
        self.executor.validate()


@dataclass(frozen=True)
class SqlConfig:
    """`curate sql RUN_DIR QUERY`."""

    run_dir: Path = Path("runs/r1")
    query: str = ""
    format: str = "table"
    output: Path | None = None
    vectors: bool = False
    max_rows: int = 50  # rows the terminal table shows; csv/json/parquet write them all

    def validate(self) -> None:
        refuse_urls([self.run_dir], what="sql path")
        if not self.query.strip():
            raise CurateError("Give a QUERY, e.g. \"SELECT count(*) FROM scores\".")
        if self.format == "parquet" and self.output is None:
            raise CurateError("--format parquet needs --output FILE (Parquet is not written to a terminal).")
        if self.format == "table" and self.output is not None:
            raise CurateError("--output needs --format csv, json or parquet.")


@dataclass(frozen=True)
class ReportConfig:
    """`curate report RUN_DIR`."""

    run_dir: Path = Path("runs/r1")
    out: Path | None = None  # None: RUN_DIR/report.html
    thumbnails: int = 24  # pairs shown: half the lowest-aligned, half the highest
    sample: int = 5000  # points on the embedding map
    shard_panels: int = 12  # per-shard histograms drawn (the lowest-mean shards first)
    thumbnail_px: int = 128
    seed: int = 0

    @property
    def html_path(self) -> Path:
        return self.out if self.out is not None else self.run_dir / "report.html"

    def validate(self) -> None:
        refuse_urls([self.run_dir, self.out], what="report path")
        if self.thumbnails < 0:
            raise CurateError(f"--thumbnails must be 0 or more (got {self.thumbnails}).")
        if self.sample < 0:
            raise CurateError(f"--sample must be 0 (no map) or more (got {self.sample}).")
        if not self.run_dir.is_dir():
            raise CurateError(f"Run directory {self.run_dir} does not exist.")


@dataclass(frozen=True)
class TrainConfig:
    """`curate train RUN_DIR --out PROJ_DIR`."""

    run: Path = Path("runs/r1")
    out: Path = Path("models/proj")
    loss: str = "contrastive"
    dim: int = 512
    epochs: int = 20
    batch_size: int = 1024
    lr: float = 1e-3
    weight_decay: float = 0.01
    val_fraction: float = 0.1
    max_val_pairs: int = 5000  # validation metrics use at most this many held-out pairs
    seed: int = 0
    device: str = "auto"

    def validate(self) -> None:
        """Refuse values no training could use, with the option's name in the message."""
        refuse_urls([self.run, self.out], what="train path")
        from curate.schemas.projection import PROJECTION_LOSSES

        if self.loss not in PROJECTION_LOSSES:
            raise CurateError(f"Unknown --loss '{self.loss}'; known: {', '.join(PROJECTION_LOSSES)}.")
        for option, value, least in (("--dim", self.dim, 1), ("--epochs", self.epochs, 1),
                                     ("--batch-size", self.batch_size, 2), ("--max-val-pairs", self.max_val_pairs, 2)):
            if value < least:
                raise CurateError(f"{option} must be at least {least} (got {value}).")
        if not self.lr > 0:
            raise CurateError(f"--lr must be positive (got {self.lr}).")
        if self.weight_decay < 0:
            raise CurateError(f"--weight-decay must be 0 or more (got {self.weight_decay}).")
        if not 0 < self.val_fraction < 1:
            raise CurateError(f"--val-fraction must be between 0 and 1, exclusive (got {self.val_fraction}).")


@dataclass(frozen=True)
class ScoreConfig:
    """`curate score INPUT... --projection PROJ_DIR --out RUN_DIR`."""

    inputs: tuple[Location, ...] = ()  # local paths or URLs (str accepted)
    projection: Path = Path("models/proj")
    out: Location = Path("runs/r1")
    device: str = "auto"
    batch_size: int = 64  # pairs per encoder batch, for shards that still need embedding
    workers: int = field(default_factory=default_workers)
    format: str | None = None
    overwrite: bool = False
    executor: ExecutorConfig = field(default_factory=ExecutorConfig)  # runs the embedding of new shards

    def __post_init__(self) -> None:
        set_locations(self, "inputs", "out")

    def validate(self) -> None:
        if not self.inputs:
            raise CurateError("Give at least one INPUT: shard files or directories, or a run directory.")
        refuse_urls([self.projection], what="--projection")
        check_backend(self.out)
        if self.batch_size < 1:
            raise CurateError(f"--batch-size must be at least 1 (got {self.batch_size}).")
        if self.workers < 0:
            raise CurateError(f"--workers must be 0 (decode in the main process) or more (got {self.workers}).")
        self.executor.validate()


@dataclass(frozen=True)
class StatsConfig:
    """`curate stats RUN_DIR`."""

    run: Path = Path("runs/r1")
    thresholds: tuple[float, ...] = (0.2, 0.3, 0.5, 0.8)
    top_fractions: tuple[float, ...] = (0.5, 0.25, 0.1)  # quantile-based thresholds: keep the top x
    quantiles: tuple[float, ...] = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)
    bins: int = 20
    json: bool = False

    def validate(self) -> None:
        refuse_urls([self.run], what="stats path")
        for value in self.thresholds:
            if not -1.0 <= value <= 1.0:
                raise CurateError(f"--threshold must be within [-1, 1] (a cosine similarity); got {value}.")
        if self.bins < 1:
            raise CurateError(f"--bins must be at least 1 (got {self.bins}).")


DEFAULT_FILTER_SHARD_SIZE = 10_000


@dataclass(frozen=True)
class FilterConfig:
    """`curate filter RUN_DIR --out SUBSET_DIR`: which scored pairs to keep, and how to write them.

    The criteria are ANDed; None means the criterion is off. `top_fraction` is global over
    the run's scored rows (not per shard), so a subset's size does not depend on sharding.
    """

    run_dir: Path = Path("runs/r1")
    out: Path = Path("subsets/s1")
    min_sim: float | None = None
    max_sim: float | None = None
    top_fraction: float | None = None
    where: str | None = None
    dedup: bool = False  # drop the rows `curate dedup` marked kept = false (RUN_DIR/dedup/)
    format: str = "parquet"
    shard_size: int = DEFAULT_FILTER_SHARD_SIZE
    overwrite: bool = False

    def validate(self) -> None:
        """Refuse values no selection could use; cosine similarity lies in [-1, 1]."""
        refuse_urls([self.run_dir, self.out], what="filter path")
        for option, value in (("--min-sim", self.min_sim), ("--max-sim", self.max_sim)):
            if value is not None and not -1.0 <= value <= 1.0:
                raise CurateError(f"{option} must lie in [-1, 1], cosine similarity's range (got {value}).")
        if self.min_sim is not None and self.max_sim is not None and self.min_sim > self.max_sim:
            raise CurateError(f"--min-sim ({self.min_sim}) is above --max-sim ({self.max_sim}): nothing could be kept.")
        if self.top_fraction is not None and not 0.0 < self.top_fraction <= 1.0:
            raise CurateError(f"--top-fraction must lie in (0, 1], e.g. 0.3 keeps the best 30% (got {self.top_fraction}).")
        if self.where is not None and not self.where.strip():
            raise CurateError("--where is empty; give a SQL predicate such as \"width >= 512\".")
        if self.shard_size < 1:
            raise CurateError(f"--shard-size must be at least 1 (got {self.shard_size}).")
        if not self.run_dir.is_dir():
            raise CurateError(f"Run directory {self.run_dir} does not exist.")


# --- `curate prompts ...`: the prompt-writing language models -------------------------------

PROMPT_RECIPES = ("concept", "upsample")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")


@dataclass(frozen=True)
class PromptTags:
    """The start/end tags wrapped around prompts so a causal LM learns whole prompts."""

    start: str = "<|startofprompt|>"
    end: str = "<|endofprompt|>"

    def validate(self) -> None:
        if not self.start.strip() or not self.end.strip() or self.start == self.end:
            raise CurateError("--start-tag and --end-tag must be two different non-empty strings.")


@dataclass(frozen=True)
class PromptsPrepareConfig:
    """`curate prompts prepare INPUT... --out DATA_DIR`."""

    inputs: tuple[Path, ...] = ()
    out: Path = Path("data/prompts")
    blocklist: Path | None = None  # None: the list shipped in curate/prompt_lms/blocklist.txt
    tags: PromptTags = field(default_factory=PromptTags)
    validation_fraction: float = 0.05
    test_fraction: float = 0.05
    text_column: str | None = None
    plain_column: str | None = None
    min_words: int = 1
    overwrite: bool = False

    def validate(self) -> None:
        if not self.inputs:
            raise CurateError("Give at least one INPUT: a subset folder, shards, or a CSV/Parquet of prompts.")
        for option, value in (("--validation-fraction", self.validation_fraction), ("--test-fraction", self.test_fraction)):
            if not 0.0 <= value < 1.0:
                raise CurateError(f"{option} must lie in [0, 1) (got {value}).")
        if self.validation_fraction + self.test_fraction >= 1.0:
            raise CurateError("--validation-fraction plus --test-fraction must leave some prompts to train on.")
        if self.min_words < 1:
            raise CurateError(f"--min-words must be at least 1 (got {self.min_words}).")
        self.tags.validate()


@dataclass(frozen=True)
class PromptTrainConfig:
    """Options both `curate prompts train` recipes share; each recipe sets its own defaults."""

    recipe: str = "concept"
    data: tuple[Path, ...] = ()
    out: Path = Path("models/prompts")
    base: str = "gpt2"
    epochs: int = 3
    batch_size: int = 8
    grad_accum: int = 4
    lr: float = 5e-5
    weight_decay: float = 0.0
    warmup_fraction: float = 0.05
    max_tokens: int = 128
    trainable_layers: int | None = None  # None: train every layer
    precision: str = "auto"  # auto: bf16 autocast on CUDA where supported (fp16 only if the recipe allows)
    device: str = "auto"
    seed: int = 0
    resume: bool = False
    log_every: int = 10  # optimizer steps between train-loss log rows
    eval_samples: int = 16  # validation pairs generated per epoch for METEOR (upsample); 0: off
    prefix: str = ""

    def validate(self) -> None:
        if not self.data:
            raise CurateError("Give DATA: a folder `curate prompts prepare` wrote, or a subset/table of prompts.")
        for option, value, least in (("--epochs", self.epochs, 1), ("--batch-size", self.batch_size, 1),
                                     ("--grad-accum", self.grad_accum, 1), ("--max-tokens", self.max_tokens, 8),
                                     ("--log-every", self.log_every, 1), ("--eval-samples", self.eval_samples, 0)):
            if value < least:
                raise CurateError(f"{option} must be at least {least} (got {value}).")
        if not self.lr > 0:
            raise CurateError(f"--lr must be positive (got {self.lr}).")
        if not 0.0 <= self.warmup_fraction < 1.0:
            raise CurateError(f"--warmup-fraction must lie in [0, 1) (got {self.warmup_fraction}).")
        if self.trainable_layers is not None and self.trainable_layers < 1:
            raise CurateError(f"--trainable-layers must be at least 1 (got {self.trainable_layers}).")
        if self.precision not in PRECISIONS:
            raise CurateError(f"Unknown --precision '{self.precision}'; known: {', '.join(PRECISIONS)}.")


@dataclass(frozen=True)
class ConceptTrainConfig(PromptTrainConfig):
    """`curate prompts train concept DATA --out MODEL_DIR`: GPT-2 writes a prompt from a subject.

    Only the top `trainable_layers` blocks learn, as in the recipe (it froze 42 of gpt2-xl's
    48 blocks); on gpt2's 12 blocks the default trains the top 6.
    """

    recipe: str = "concept"
    base: str = "gpt2"
    epochs: int = 3
    lr: float = 5e-5
    batch_size: int = 8
    grad_accum: int = 4
    trainable_layers: int | None = 6
    max_tokens: int = 96


@dataclass(frozen=True)
class UpsampleTrainConfig(PromptTrainConfig):
    """`curate prompts train upsample DATA --out MODEL_DIR`: FLAN-T5 turns a plain prompt detailed."""

    recipe: str = "upsample"
    base: str = "google/flan-t5-base"
    epochs: int = 5
    lr: float = 3e-4
    batch_size: int = 8
    grad_accum: int = 8
    trainable_layers: int | None = None
    max_tokens: int = 128
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
        if not self.temperature > 0:
            raise CurateError(f"--temperature must be positive (got {self.temperature}).")
        if not 0.0 < self.top_p <= 1.0:
            raise CurateError(f"--top-p must lie in (0, 1] (got {self.top_p}).")
        if not self.repetition_penalty >= 1.0:
            raise CurateError(f"--repetition-penalty must be at least 1.0 (got {self.repetition_penalty}).")


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
    """`curate prompts generate MODEL_DIR TEXT...`; None settings take the recipe's defaults."""

    model: Path = Path("models/prompts")
    texts: tuple[str, ...] = ()
    num: int = 1
    max_length: int | None = None
    min_length: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    repetition_penalty: float | None = None
    seed: int = 0
    batch_size: int = 16
    device: str = "auto"
    out: Path | None = None

    def settings(self, recipe: str) -> GenerationSettings:
        """The recipe's defaults with every option the user gave laid over them."""
        return recipe_settings(recipe, self)

    def validate(self) -> None:
        if not self.texts:
            raise CurateError("Give at least one TEXT: a subject (concept model) or a plain prompt (upsampler).")
        if self.num < 1 or self.batch_size < 1:
            raise CurateError(f"-n and --batch-size must be at least 1 (got {self.num}, {self.batch_size}).")


@dataclass(frozen=True)
class PromptsEvalConfig:
    """`curate prompts eval MODEL_DIR DATA`: generate for held-out inputs and score the outputs."""

    model: Path = Path("models/prompts")
    data: Path = Path("data/prompts/test.parquet")
    score_model: str = DEFAULT_TEXT_MODEL  # BERTScore's encoder: the tool's own text model
    limit: int = 200  # held-out prompts (upsample) or subjects x references (concept) used
    subjects: int = 20  # concept: best-scored noun phrases generated for
    num: int = 2  # generations per input
    seed: int = 0
    batch_size: int = 16
    device: str = "auto"
    json: bool = False
    max_length: int | None = None  # decoding overrides; None: the recipe's defaults
    min_length: int | None = None

    def settings(self, recipe: str) -> GenerationSettings:
        return recipe_settings(recipe, self)

    def validate(self) -> None:
        for option, value in (("--limit", self.limit), ("--subjects", self.subjects), ("-n", self.num),
                              ("--batch-size", self.batch_size)):
            if value < 1:
                raise CurateError(f"{option} must be at least 1 (got {value}).")


DEFAULT_DECODER = "gpt2"


def _at_least(pairs: tuple[tuple[str, int | float, int | float], ...]) -> None:
    """Refuse the first `(option, value, least)` whose value is below its least."""
    for option, value, least in pairs:
        if value < least:
            raise CurateError(f"{option} must be at least {least} (got {value}).")


@dataclass(frozen=True)
class DecodeConfig:
    """How `caption generate` and `caption eval` decode prompts: greedy, beam or sampling."""

    max_length: int = 77  # new tokens at most
    num_beams: int = 1
    sample: bool = False
    top_p: float = 0.9
    temperature: float = 1.0
    repetition_penalty: float = 1.0
    seed: int = 0  # sampling is reproducible for a given seed

    def validate(self) -> None:
        _at_least((("--max-length", self.max_length, 1), ("--num-beams", self.num_beams, 1)))
        if not 0.0 < self.top_p <= 1.0:
            raise CurateError(f"--top-p must lie in (0, 1] (got {self.top_p}).")
        if not self.temperature > 0:
            raise CurateError(f"--temperature must be positive (got {self.temperature}).")
        if not self.repetition_penalty > 0:
            raise CurateError(f"--repetition-penalty must be positive, 1.0 is none (got {self.repetition_penalty}).")


@dataclass(frozen=True)
class CaptionTrainConfig:
    """`curate caption train SUBSET --out MODEL_DIR`: the image-to-prompt captioner."""

    subset: Path = Path("subsets/s1")
    out: Path = Path("models/captioner")
    decoder: str = DEFAULT_DECODER
    image_model: str = DEFAULT_IMAGE_MODEL
    from_embeddings: Path | None = None  # a run dir whose image_emb vectors replace the image tower
    finetune_image: bool = False
    epochs: int = 20
    batch_size: int = 32
    grad_accum: int = 1  # optimiser steps every this many batches
    lr: float = 5e-5
    val_fraction: float = 0.1
    max_tokens: int = 77  # prompt tokens kept, EOS included
    prefix_hidden: int = 512
    seed: int = 0
    device: str = "auto"
    workers: int = field(default_factory=default_workers)
    format: str | None = None
    limit: int | None = None
    resume: bool = False
    overwrite: bool = False

    def validate(self) -> None:
        _at_least((("--epochs", self.epochs, 1), ("--batch-size", self.batch_size, 1),
                   ("--grad-accum", self.grad_accum, 1), ("--max-tokens", self.max_tokens, 2),
                   ("--workers", self.workers, 0), ("--limit", self.limit or 1, 1)))
        if not self.lr > 0:
            raise CurateError(f"--lr must be positive (got {self.lr}).")
        if not 0 < self.val_fraction < 1:
            raise CurateError(f"--val-fraction must be between 0 and 1, exclusive (got {self.val_fraction}).")
        if self.from_embeddings is not None and self.finetune_image:
            raise CurateError("--from-embeddings reuses frozen image vectors; it cannot be combined with --finetune-image.")
        if self.resume and self.overwrite:
            raise CurateError("--resume continues a training run and --overwrite discards it; pass one of them.")
        if not Path(self.subset).exists():
            raise CurateError(f"Subset {self.subset} does not exist.")


@dataclass(frozen=True)
class CaptionGenerateConfig:
    """`curate caption generate MODEL_DIR INPUT...`: prompts for image files or subsets."""

    model: Path = Path("models/captioner")
    inputs: tuple[Path, ...] = ()
    out: Path | None = None  # None: CSV on stdout; else .csv or .parquet
    decoding: DecodeConfig = field(default_factory=DecodeConfig)
    batch_size: int = 32
    device: str = "auto"
    workers: int = field(default_factory=default_workers)
    format: str | None = None
    limit: int | None = None

    def validate(self) -> None:
        if not self.inputs:
            raise CurateError("Give at least one INPUT: image files, or subset shards or folders.")
        _at_least((("--batch-size", self.batch_size, 1), ("--workers", self.workers, 0), ("--limit", self.limit or 1, 1)))
        if self.out is not None and self.out.suffix.lower() not in (".csv", ".parquet"):
            raise CurateError(f"--out must end in .csv or .parquet (got {self.out.name}).")
        self.decoding.validate()


@dataclass(frozen=True)
class CaptionEvalConfig:
    """`curate caption eval MODEL_DIR SUBSET`: generated prompts against the subset's own."""

    model: Path = Path("models/captioner")
    subset: Path = Path("subsets/heldout")
    decoding: DecodeConfig = field(default_factory=DecodeConfig)
    text_model: str = DEFAULT_TEXT_MODEL
    text_pooling: str = "mean"
    projection: Path | None = None  # also score generated prompts against their images
    batch_size: int = 32
    device: str = "auto"
    workers: int = field(default_factory=default_workers)
    format: str | None = None
    limit: int | None = None
    json: bool = False
    out: Path | None = None  # per-pair results (.csv or .parquet)

    def validate(self) -> None:
        _at_least((("--batch-size", self.batch_size, 1), ("--workers", self.workers, 0), ("--limit", self.limit or 1, 1)))
        if not Path(self.subset).exists():
            raise CurateError(f"Subset {self.subset} does not exist.")
        if self.out is not None and self.out.suffix.lower() not in (".csv", ".parquet"):
            raise CurateError(f"--out must end in .csv or .parquet (got {self.out.name}).")
        self.decoding.validate()


@dataclass(frozen=True)
class IndexConfig:
    """`curate index RUN_DIR --projection PROJ_DIR`: FAISS indexes over the projected vectors."""

    run_dir: Path = Path("runs/r1")
    projection: Path = Path("models/proj")
    max_index_memory: str = "2GB"  # per index: image and text are built, and loaded, one at a time
    index_type: str = "auto"
    target_recall: float = 0.95  # recall@10 the search settings are tuned to reach
    recall_queries: int = 1000  # indexed vectors searched exactly to measure recall
    device: str = "auto"  # FAISS on the GPU when faiss-gpu and a GPU are present
    seed: int = 0
    overwrite: bool = False

    @property
    def memory_budget(self) -> int:
        from curate.units import parse_size

        return parse_size(self.max_index_memory, option="--max-index-memory")

    def validate(self) -> None:
        refuse_urls([self.run_dir, self.projection], what="index path")
        from curate.index.kinds import INDEX_KINDS

        if self.index_type != "auto" and self.index_type not in INDEX_KINDS:
            raise CurateError(f"Unknown --index-type '{self.index_type}'; known: auto, {', '.join(INDEX_KINDS)}.")
        if self.memory_budget <= 0:
            raise CurateError(f"--max-index-memory must be positive (got {self.max_index_memory}).")
        if not 0.0 < self.target_recall <= 1.0:
            raise CurateError(f"--target-recall must lie in (0, 1] (got {self.target_recall}).")
        if self.recall_queries < 1:
            raise CurateError(f"--recall-queries must be at least 1 (got {self.recall_queries}).")
        if not self.run_dir.is_dir():
            raise CurateError(f"Run directory {self.run_dir} does not exist.")


@dataclass(frozen=True)
class SearchConfig:
    """`curate search RUN_DIR (--text TEXT | --image FILE)`."""

    run_dir: Path = Path("runs/r1")
    text: str | None = None
    image: Path | None = None
    k: int = 20
    target: str = "image"  # which index: image (cross-modal for text queries) or text
    json: bool = False
    device: str = "auto"

    def validate(self) -> None:
        refuse_urls([self.run_dir], what="search path")
        if (self.text is None) == (self.image is None):
            raise CurateError("Give exactly one query: --text \"...\" or --image FILE.")
        if self.text is not None and not self.text.strip():
            raise CurateError("--text is empty; give words to search for.")
        if self.k < 1:
            raise CurateError(f"-k must be at least 1 (got {self.k}).")
        if self.target not in ("image", "text"):
            raise CurateError(f"Unknown --target '{self.target}'; known: image, text.")


@dataclass(frozen=True)
class DedupConfig:
    """`curate dedup RUN_DIR --threshold 0.95`: near-duplicate images, one kept per group."""

    run_dir: Path = Path("runs/r1")
    threshold: float = 0.95  # cosine of projected image vectors at or above which two images are one
    neighbours: int = 16  # k of the k-NN search each image makes; groups grow through shared members
    device: str = "auto"
    overwrite: bool = False

    def validate(self) -> None:
        refuse_urls([self.run_dir], what="dedup path")
        if not 0.0 < self.threshold <= 1.0:
            raise CurateError(f"--threshold must lie in (0, 1], a cosine similarity (got {self.threshold}).")
        if self.neighbours < 2:
            raise CurateError(f"--neighbours must be at least 2 (got {self.neighbours}).")
