"""Configs of the main flow: `embed`, `train`, `score`, `stats`, `filter`, and the option groups
they share (the encoders, the executor).

Inputs and run directories are kept as typed (a `str` or a `Path`); the pipelines turn them
into local paths or URLs (`curate.io.location`), since only `embed` and `score` accept URLs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Union

from curate.errors import CurateError
from curate.schemas.config.checks import all_of, at_least, each, env_assignment, existing, given, local_only
from curate.schemas.config.checks import not_blank, one_of, positive, size_at_least, within
from curate.schemas.config.options import argument, check_fields, nested, option
from curate.schemas.projection import PROJECTION_LOSSES
from curate.schemas.tables import EncoderInfo

DEFAULT_IMAGE_MODEL = "microsoft/resnet-50"
DEFAULT_TEXT_MODEL = "bert-base-uncased"
MAX_BINS = 10_000  # `stats --bins`: more bars than a terminal or a JSON reader has use for
DEFAULT_FOLDS = 5  # `train --folds`: out-of-fold scoring is the default (docs/filtering.md says what it costs)
MAX_FOLDS = 100
DEFAULT_NULL_PAIRS = 10_000  # `score --null-pairs`: a false-match rate of 0.01 then rests on 100 mismatches
MIN_NULL_PAIRS = 100
RECIPE_NAMES = ("datacomp-basic", "laion")  # `curate.subsets.recipes.RECIPES` holds exactly these
DEFAULT_BATCH_BYTES = "256MiB"  # one member at the size cap (io.safety.MAX_MEMBER_BYTES) fills a batch
DEFAULT_MAX_PIXELS = 64_000_000  # decoded pixels above which an image is refused as a decompression bomb
EXECUTOR_NAMES = ("local", "ray")  # `curate.runtime.executors.EXECUTORS` holds exactly these
TEXT_POOLINGS = ("mean", "cls")
DEVICES = ("auto", "cpu", "cuda")
PathLike = Union[str, Path]
COSINE = dict(note=", cosine similarity's range")
DEVICE_HELP = "auto, cpu or cuda."
FORMAT_HELP = "Force a shard format instead of detecting it."


def default_workers() -> int:
    """Decode processes: leave one core to the model; at least one, at most eight."""
    return max(1, min(8, (os.cpu_count() or 2) - 1))


def run_dir_argument(help: str, what: str) -> Any:
    """A run directory on this machine that must exist (only embed and score take URLs)."""
    return argument(Path("runs/r1"), help, check=all_of(local_only(what), existing("Run directory")))


def projection_option(what: str) -> Any:
    """`--projection`: a folder made by `curate train`, or `native` (the encoders' own joint space)."""
    return option(Path("models/proj"), "Projection directory made by `curate train`, or `native`: the cosine in the "
                  "encoders' own joint space (CLIP, SigLIP), nothing trained.", flags=("--projection", "-p"),
                  required=True, check=local_only(what))


def device_option(help: str = DEVICE_HELP) -> object:
    return option("auto", help, check=one_of(DEVICES))


def workers_option(help: str = "Decode worker processes (0: decode in the main process).") -> object:
    return option(help=help, factory=default_workers, check=at_least(0), show_default="cores - 1, at most 8")


def limit_option(help: str) -> object:
    return option(None, help, check=at_least(1))


def format_option() -> object:
    return option(None, FORMAT_HELP, flags=("--format",))


@dataclass(frozen=True)
class EncoderConfig:
    """Which encoders embed a run, and how; shared by `embed` and the embedding `score` does."""

    model: str | None = option(
        None, "Both towers from one CLIP-family checkpoint (CLIP, SigLIP, ...): hub id or local directory.",
        flags=("--model",), check=not_blank)
    image_model: str = option(DEFAULT_IMAGE_MODEL, "Image encoder: hub id or local directory (a CLIP-family "
                              "checkpoint gives its image tower).")
    text_model: str = option(DEFAULT_TEXT_MODEL, "Text encoder: hub id or local directory (a CLIP-family "
                             "checkpoint gives its text tower).")
    text_pooling: str = option("mean", "Text pooling of a BERT-family encoder: mean or cls.", check=one_of(TEXT_POOLINGS))
    max_text_tokens: int = option(77, "Captions are truncated to this many tokens (CLIP-family towers use their own "
                                  "context).", check=at_least(1))
    device: str = device_option()

    @property
    def image_checkpoint(self) -> str:
        """What embeds the images: `--model` when given, else `--image-model`."""
        return self.model or self.image_model

    @property
    def text_checkpoint(self) -> str:
        """What embeds the captions: `--model` when given, else `--text-model`."""
        return self.model or self.text_model

    def validate(self) -> None:
        check_fields(self)
        if self.model and (self.image_model, self.text_model) != (DEFAULT_IMAGE_MODEL, DEFAULT_TEXT_MODEL):
            raise CurateError("--model sets both towers; give either --model or --image-model/--text-model.")

    def expected(self) -> tuple[EncoderInfo, EncoderInfo]:
        """What vectors these options make, as far as known before loading: models and text settings
        (a CLIP-family text tower records none of these settings, so none is compared)."""
        return (EncoderInfo(model=self.image_checkpoint, dim=0, kind="image"),
                EncoderInfo(model=self.text_checkpoint, dim=0, kind="text",
                            settings={"pooling": self.text_pooling, "max_tokens": self.max_text_tokens}))


@dataclass(frozen=True)
class ColumnsConfig:
    """Which source columns hold the image, the caption and the key, when detection guesses wrong.

    They apply to the formats that have columns (Parquet, Arrow, an image folder's CSV) and
    are recorded in the run's tables, so `score` and `filter` read the sources the same way.
    """

    image_column: str | None = option(
        None, "Column holding the image (Parquet/Arrow: bytes or {bytes, path}; CSV: the file name).",
        check=not_blank)
    text_column: str | None = option(None, "Column holding the caption.", check=not_blank)
    key_column: str | None = option(None, "Column whose values name the samples (an id column).", check=not_blank)

    def chosen(self) -> dict[str, str]:
        """The columns the user named, for the tables' metadata (empty when detection decides)."""
        return {k: v for k, v in vars(self).items() if v is not None}


@dataclass(frozen=True)
class ExecutorConfig:
    """Where a command's shards run: `local` (this process) or `ray` (a cluster's workers).

    The other fields apply to Ray only; each Ray worker holds one copy of the models.
    """

    name: str = option("local", "Where shards run: local (this process) or ray (a Ray cluster).",
                       flags=("--executor",), check=one_of(EXECUTOR_NAMES))
    ray_address: str | None = option(
        None, "Ray cluster to join: HOST:PORT, auto (the one `ray start` recorded on this node) or local (a private "
        "one for this run). Unset: RAY_ADDRESS, else the recorded one, else a local one.", flags=("--ray-address",))
    num_cpus_per_worker: float = option(1.0, "Ray: CPUs each worker reserves (give it --workers + 1).",
                                        check=at_least(0))
    num_gpus_per_worker: float | None = option(
        None, "Ray: GPUs each worker reserves and sees (0.5 packs two per GPU).  [default: 1 if the cluster has "
        "GPUs, else 0]", check=at_least(0))
    concurrency: int | None = option(None, "Ray: workers to start (unset: as many as the nodes hold).",
                                     flags=("--concurrency",), check=at_least(1))
    max_retries: int = option(3, "Ray: restarts of a worker that died; its shard is redone.", check=at_least(0))
    ray_env: tuple[str, ...] = option(
        (), "Ray: NAME=VALUE, or NAME to pass this machine's value, set in every worker (repeatable).",
        flags=("--ray-env",), check=each(env_assignment), metavar="NAME[=VALUE]")
    ray_pip: tuple[str, ...] = option((), "Ray: a pip requirement Ray installs for the workers (repeatable).",
                                      flags=("--ray-pip",), check=each(not_blank), metavar="REQUIREMENT")

    def validate(self) -> None:
        check_fields(self)
        if self.num_cpus_per_worker == 0 and self.num_gpus_per_worker == 0:
            raise CurateError("A Ray worker needs some resource: give --num-cpus-per-worker or --num-gpus-per-worker above 0.")


@dataclass(frozen=True)
class EmbedConfig:
    """Embed image-text pairs: shards -> RUN_DIR/embeddings/ (+ errors/), resumable."""

    inputs: tuple[PathLike, ...] = argument(
        (), "Shard files or directories (walked recursively), or URLs (s3://, gs://, hf:// ...).", metavar="INPUT",
        check=given("Give at least one INPUT shard file or directory."))
    out: PathLike = option(Path("runs/r1"), "Run directory or URL: writes embeddings/ and errors/ there.",
                           flags=("--out", "-o"), required=True, metavar="RUN_DIR")
    encoders: EncoderConfig = nested(EncoderConfig)
    batch_size: int = option(64, "Pairs per model batch.", check=at_least(1))
    max_batch_bytes: str = option(
        DEFAULT_BATCH_BYTES, "Image bytes per model batch at most (a batch of huge images closes early), "
        "e.g. 64MB, 1GiB.", check=size_at_least(1))
    workers: int = workers_option()
    format: str | None = format_option()
    columns: ColumnsConfig = nested(ColumnsConfig)
    limit: int | None = limit_option("Embed at most this many samples per shard (for a quick try).")
    overwrite: bool = option(False, "Redo shards that are already embedded.")
    max_pixels: int = DEFAULT_MAX_PIXELS
    executor: ExecutorConfig = nested(ExecutorConfig)

    @property
    def batch_bytes(self) -> int:
        from curate.units import parse_size

        return parse_size(self.max_batch_bytes, option="--max-batch-bytes")

    def validate(self) -> None:
        """Refuse values no run could use, with the option's name in the message."""
        check_fields(self)
        self.encoders.validate()
        self.executor.validate()


@dataclass(frozen=True)
class TrainConfig:
    """Learn the alignment projection from a run's embeddings: RUN_DIR -> PROJ_DIR."""

    run_dir: Path = run_dir_argument("Run directory whose embeddings/ the projection learns from.", "train path")
    out: Path = option(Path("models/proj"), "Projection directory: writes the weights and card.json.",
                       flags=("--out", "-o"), required=True, check=local_only("train path"))
    loss: str = option("contrastive", "contrastive (shared space, InfoNCE) or cosine (image -> text space).",
                       check=one_of(PROJECTION_LOSSES))
    dim: int = option(512, "Shared space size (contrastive; cosine maps into the text space).", check=at_least(1))
    epochs: int = option(20, "Passes over the training split.", check=at_least(1))
    batch_size: int = option(1024, "Pairs per step (the contrastive loss's in-batch negatives).", check=at_least(2))
    lr: float = option(1e-3, "AdamW learning rate.", check=positive)
    weight_decay: float = option(0.01, "AdamW weight decay on the projection matrices.", check=at_least(0))
    val_fraction: float = option(0.1, "Share of pairs held out for validation (by key hash).",
                                 check=within(0, 1, low_open=True, high_open=True))
    max_val_pairs: int = option(5000, "Held-out pairs the validation metrics use at most.", check=at_least(2))
    seed: int = option(0, "Same seed and same data give byte-identical weights.")
    folds: int = option(DEFAULT_FOLDS, "Also train this many out-of-fold projections: `score` then scores each "
                        "pair with one that never saw it, so a wrong caption seen in training cannot hide "
                        "(1: off).", check=within(1, MAX_FOLDS))
    device: str = device_option()

    def validate(self) -> None:
        """Refuse values no training could use, with the option's name in the message."""
        check_fields(self)


@dataclass(frozen=True)
class ScoreConfig:
    """Score every pair: embeddings (made only where missing) + projection -> RUN_DIR/scores/."""

    inputs: tuple[PathLike, ...] = argument(
        (), "Shard files or directories, or run directories (their embeddings/); local or URLs.", metavar="INPUT",
        check=given("Give at least one INPUT: shard files or directories, or a run directory."))
    projection: Path = projection_option("--projection")
    out: PathLike = option(Path("runs/r1"), "Run directory or URL: writes scores/ (and embeddings/ for new shards).",
                           flags=("--out", "-o"), required=True, metavar="RUN_DIR")
    device: str = device_option()
    batch_size: int = option(64, "Pairs per encoder batch, for shards not yet embedded.", check=at_least(1))
    workers: int = workers_option("Decode worker processes, for shards not yet embedded.")
    format: str | None = format_option()
    columns: ColumnsConfig = nested(ColumnsConfig)  # for the shards this run embeds
    overwrite: bool = option(False, "Redraw the null and rescore shards already scored by this projection "
                             "(never re-embeds).")
    null_pairs: int = option(DEFAULT_NULL_PAIRS, "Mismatched pairs of the run (an image with another pair's caption) "
                             "scored as the null that each pair's false_match_rate is counted against; a smaller "
                             "run gives every mismatch there is.", check=at_least(MIN_NULL_PAIRS))
    null_seed: int = option(0, "Seed of the null's sample of pairs (drawn by key hash, never by file order).")
    max_pixels: int = DEFAULT_MAX_PIXELS
    executor: ExecutorConfig = nested(ExecutorConfig)  # also runs the embedding of new shards

    def embedding(self, inputs: tuple[PathLike, ...], encoders: EncoderConfig) -> EmbedConfig:
        """The `embed` this score run does for shards without embeddings: same run, batches,
        decode workers, format, pixel cap and executor, with the projection's encoders."""
        return EmbedConfig(inputs=inputs, out=self.out, encoders=encoders, batch_size=self.batch_size,
                           workers=self.workers, format=self.format, columns=self.columns,
                           max_pixels=self.max_pixels, executor=self.executor)

    def validate(self) -> None:
        check_fields(self)
        self.executor.validate()


@dataclass(frozen=True)
class StatsConfig:
    """Count, mean, spread, quantiles, histogram and threshold counts of a run's similarity."""

    run_dir: Path = run_dir_argument("Scored run directory (reads RUN_DIR/scores/).", "stats path")
    thresholds: tuple[float, ...] = option(
        (0.2, 0.3, 0.5, 0.8), "A --min-sim value to count pairs kept at (repeatable).",
        flags=("--threshold", "-t"), check=each(within(-1, 1, **COSINE)))
    top_fractions: tuple[float, ...] = (0.5, 0.25, 0.1)  # quantile-based thresholds: keep the top x
    false_matches: tuple[float, ...] = (0.001, 0.01, 0.05, 0.1)  # --max-false-match marks, for rated runs
    quantiles: tuple[float, ...] = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)
    bins: int = option(20, "Histogram bars.", check=within(1, MAX_BINS, note=", bars a terminal can show"))
    json: bool = option(False, "Print machine-readable JSON on stdout instead of tables.", flags=("--json",))

    def validate(self) -> None:
        check_fields(self)


DEFAULT_FILTER_SHARD_SIZE = 10_000


@dataclass(frozen=True)
class FilterConfig:
    """Write the pairs that pass every criterion, original image bytes untouched, + manifest.json.

    The criteria are ANDed; None means the criterion is off. `top_fraction` is global over
    the run's scored rows (not per shard), so a subset's size does not depend on sharding.
    """

    run_dir: Path = run_dir_argument("Scored run directory (reads RUN_DIR/scores/).", "filter path")
    out: Path = option(Path("subsets/s1"), "Subset directory: output shards + manifest.json.",
                       flags=("--out", "-o"), required=True, check=local_only("filter path"))
    min_sim: float | None = option(None, "Keep pairs with similarity >= this (in [-1, 1]).", flags=("--min-sim",),
                                   check=within(-1, 1, **COSINE))
    max_sim: float | None = option(None, "Keep pairs with similarity <= this (in [-1, 1]).", flags=("--max-sim",),
                                   check=within(-1, 1, **COSINE))
    top_fraction: float | None = option(
        None, "Keep the best fraction (0, 1] of the run's pairs by similarity.", flags=("--top-fraction",),
        check=within(0, 1, low_open=True, note=", e.g. 0.3 keeps the best 30%"))
    max_false_match: float | None = option(
        None, "Keep pairs whose false_match_rate (the share of the run's mismatched pairs that score at least as "
        "high) is at most this, in [0, 1]: the same meaning for every projection.", flags=("--max-false-match",),
        check=within(0, 1, note=", a share of mismatched pairs"))
    recipe: str | None = option(None, "A published filter: datacomp-basic or laion (see docs/filtering.md).",
                                flags=("--recipe",), check=one_of(RECIPE_NAMES))
    where: str | None = option(
        None, "SQL predicate over score and meta columns, e.g. \"sampler = 'k_lms' AND width >= 512\".",
        flags=("--where",), check=not_blank)
    dedup: bool = option(False, "Drop the near-duplicates `curate dedup` marked (kept = false).", flags=("--dedup",))
    format: str = option("parquet", "Output format: parquet, webdataset or imagefolder.", flags=("--format",))
    shard_size: int = option(DEFAULT_FILTER_SHARD_SIZE, "Pairs per output shard.", flags=("--shard-size",),
                             check=at_least(1))
    overwrite: bool = option(False, "Replace a finished subset in --out.")

    def validate(self) -> None:
        """Refuse values no selection could use; cosine similarity lies in [-1, 1]."""
        check_fields(self)
        if self.min_sim is not None and self.max_sim is not None and self.min_sim > self.max_sim:
            raise CurateError(f"--min-sim ({self.min_sim}) is above --max-sim ({self.max_sim}): nothing could be kept.")
