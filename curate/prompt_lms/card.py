"""Contracts of the prompt models: prepared data tables, the prepare report, the model card.

`prepare` writes `train|validation|test.parquet` with `PROMPT_TABLE_SCHEMA` and a
`prompts-report.json` last (the completion marker); a trained model directory holds the
`save_pretrained` files plus `card.json`, which `generate` and `eval` read to know the
recipe, tags and task prefix without being told.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from curate.errors import CurateError

PREPARE_REPORT = "prompts-report.json"
CARD_FILE = "card.json"
BLOCKLIST_FILE = "blocklist.txt"  # a user's --blocklist, kept in the data folder and in models trained on it
CARD_VERSION = 1
PROMPT_TABLE_SCHEMA = pa.schema([
    ("text", pa.string()),  # the cleaned (detailed) prompt
    ("tagged", pa.string()),  # text wrapped in the start/end tags: the concept model's training text
    ("plain", pa.string()),  # the basic version: the upsampler's input
    ("plain_source", pa.string()),  # "given" (a pair in the input) or "derived" (plain_version)
    ("subject", pa.string()),  # first noun phrase: what the prompt is about
])


class RemovalReason:
    """Why `prepare` dropped a prompt; one place so the report, docs and tests agree."""

    EMPTY = "empty"
    TOO_SHORT = "too_short"
    BLOCKLISTED = "blocklisted"
    DUPLICATE = "duplicate"
    EMPTY_PLAIN = "empty_plain"


@dataclass
class PrepareReport:
    """What `prepare` read, kept per split, and removed per reason (the counts add up)."""

    inputs: list[str]
    read: int = 0
    kept: dict[str, int] = field(default_factory=lambda: {"train": 0, "validation": 0, "test": 0})
    removed: dict[str, int] = field(default_factory=dict)
    blocked_terms: dict[str, int] = field(default_factory=dict)
    plain_sources: dict[str, int] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    fractions: dict[str, float] = field(default_factory=dict)
    blocklist: str = ""

    def count(self, bucket: dict[str, int], name: str) -> None:
        bucket[name] = bucket.get(name, 0) + 1

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def load(cls, folder: Path) -> "PrepareReport":
        path = Path(folder) / PREPARE_REPORT
        try:
            return cls(**json.loads(path.read_text()))
        except (OSError, ValueError, TypeError) as exc:
            raise CurateError(f"Could not read {path} ({exc.__class__.__name__}); rerun `curate prompts prepare`.") from None


@dataclass
class PromptModelCard:
    """What a trained prompt model is and how it was made; `generate` and `eval` trust it."""

    recipe: str
    base: str
    tags: dict[str, str]
    prefix: str
    max_tokens: int
    trainable_layers: int | None
    best_epoch: int = 0
    best_validation_loss: float | None = None
    epochs_run: int = 0
    data: str = ""
    train_rows: int = 0
    precision: str = "fp32"
    version: int = CARD_VERSION
    metrics: dict[str, float] = field(default_factory=dict)
    base_source: str = ""  # "local" (base is then an absolute folder) or "hub"; "" in cards of older runs
    blocklist: str = ""  # the blocklist of the training data ("default", or the file given); copied as BLOCKLIST_FILE

    def save(self, folder: Path) -> None:
        from curate.io.atomic import write_json_atomic

        write_json_atomic(Path(folder) / CARD_FILE, asdict(self))

    @classmethod
    def load(cls, folder: Path) -> "PromptModelCard":
        path = Path(folder) / CARD_FILE
        if not path.is_file():
            raise CurateError(
                f"{folder} is not a prompt model (no {CARD_FILE}); pass a folder `curate prompts train` wrote."
            )
        from curate.models.model_files import read_json

        data = read_json(path, hint="the prompt model's card is damaged; copy the folder again or retrain it")
        try:
            return cls(**data)
        except TypeError as exc:
            raise CurateError(f"{path} is not a valid prompt model card ({exc}).") from None
