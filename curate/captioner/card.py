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

SCHEMA_VERSION = 2  # 2: image_source and prefix_length; cards of version 1 still load
CARD_FILE = "card.json"
PREFIX_FILE = "prefix.safetensors"
DECODER_DIR = "gpt2"
TOKENIZER_DIR = "tokenizer"
IMAGE_DIR = "image"  # the image tower, when it came from a local folder or was fine-tuned
STATE_FILE = "training_state.pt"  # optimiser and RNG state, in `last/` only


class ImageSource:
    """Where `generate` finds the image tower a checkpoint was trained on."""

    BUNDLED = "bundled"  # IMAGE_DIR inside the checkpoint: a local folder's tower, or the fine-tuned one
    HUB = "hub"  # `image_model` is a hub id (cached or downloaded like any `from_pretrained` model)
    PATH = "path"  # version-1 cards only: `image_model` is an absolute path outside the checkpoint


@dataclass(frozen=True)
class CaptionerCard:
    """What a captioner checkpoint was made from and how well it did on validation."""

    image_model: str  # the tower it was trained on, as given (a hub id, or the local folder it was copied from)
    image_dim: int
    image_finetuned: bool
    decoder: str  # the decoder it started from, as given (the trained one is in DECODER_DIR)
    prefix_hidden: int
    max_tokens: int
    epoch: int
    train_loss: float
    val_loss: float
    train_pairs: int
    val_pairs: int
    hyper: dict[str, Any] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    image_source: str = ImageSource.BUNDLED
    prefix_length: int = 1
    schema_version: int = SCHEMA_VERSION

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_text(cls, text: str) -> "CaptionerCard":
        """Raises KeyError/TypeError/ValueError on a malformed card; a version-1 card gets its implied fields."""
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError("the card is not a JSON object")
        if data.get("schema_version", 1) == 1:
            data.setdefault("image_source", ImageSource.BUNDLED if data.get("image_finetuned") else ImageSource.PATH)
        return cls(**data)


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
