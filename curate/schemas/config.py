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
