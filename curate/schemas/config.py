"""One config model per command. The CLI's options map onto these; defaults live here only."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from curate.errors import CurateError
from curate.models.preprocess import DEFAULT_MAX_PIXELS
from curate.runtime.pool import default_workers

DEFAULT_IMAGE_MODEL = "microsoft/resnet-50"
DEFAULT_TEXT_MODEL = "bert-base-uncased"


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
class EmbedConfig:
    """`curate embed INPUT... --out RUN_DIR`."""

    inputs: tuple[Path, ...] = ()
    out: Path = Path("runs/r1")
    encoders: EncoderConfig = field(default_factory=EncoderConfig)
    batch_size: int = 64
    workers: int = field(default_factory=default_workers)
    format: str | None = None
    limit: int | None = None
    overwrite: bool = False
    max_pixels: int = DEFAULT_MAX_PIXELS

    def validate(self) -> None:
        """Refuse values no run could use, with the option's name in the message."""
        if not self.inputs:
            raise CurateError("Give at least one INPUT shard file or directory.")
        if self.batch_size < 1:
            raise CurateError(f"--batch-size must be at least 1 (got {self.batch_size}).")
        if self.workers < 0:
            raise CurateError(f"--workers must be 0 (decode in the main process) or more (got {self.workers}).")
        if self.limit is not None and self.limit < 1:
            raise CurateError(f"--limit must be at least 1 (got {self.limit}).")
        self.encoders.validate()


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
        if self.thumbnails < 0:
            raise CurateError(f"--thumbnails must be 0 or more (got {self.thumbnails}).")
        if self.sample < 0:
            raise CurateError(f"--sample must be 0 (no map) or more (got {self.sample}).")
        if not self.run_dir.is_dir():
            raise CurateError(f"Run directory {self.run_dir} does not exist.")
