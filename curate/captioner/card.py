"""The captioner's on-disk contracts: the checkpoint card and the training folder's layout.

A checkpoint is a `save_pretrained`-style folder; the card says which image tower feeds it,
how the prefix is shaped, and how far training had got, so `generate` and `eval` can rebuild
exactly what `train` saved.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 1
CARD_FILE = "card.json"
PREFIX_FILE = "prefix.safetensors"
DECODER_DIR = "gpt2"
TOKENIZER_DIR = "tokenizer"
IMAGE_DIR = "image"  # only when the image tower was fine-tuned
STATE_FILE = "training_state.pt"  # optimiser and RNG state, in `last/` only


@dataclass(frozen=True)
class CaptionerCard:
    """What a captioner checkpoint was made from and how well it did on validation."""

    image_model: str  # hub id or directory of the image tower (IMAGE_DIR when fine-tuned)
    image_dim: int
    image_finetuned: bool
    decoder: str  # the decoder it started from
    prefix_hidden: int
    max_tokens: int
    epoch: int
    train_loss: float
    val_loss: float
    train_pairs: int
    val_pairs: int
    hyper: dict[str, Any] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    schema_version: int = SCHEMA_VERSION

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_text(cls, text: str) -> "CaptionerCard":
        """Raises KeyError/TypeError/ValueError on a malformed card."""
        return cls(**json.loads(text))


@dataclass(frozen=True)
class CaptionerLayout:
    """`OUT/{best,last}/` checkpoints, `OUT/history.csv` and `OUT/loss.png`."""

    root: Path

    @property
    def best(self) -> Path:
        return self.root / "best"

    @property
    def last(self) -> Path:
        return self.root / "last"

    @property
    def history(self) -> Path:
        return self.root / "history.csv"

    @property
    def curve(self) -> Path:
        return self.root / "loss.png"
