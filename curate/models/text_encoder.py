"""The text tower: one vector per caption, from a BERT-family encoder or a CLIP-family checkpoint.

`bert-base-uncased` (768-d) is the default. A BERT-family encoder is pooled with `mean`
(masked mean over tokens) or `cls` (the first token's hidden state), captions truncated to
`max_tokens`, which may not exceed the positions the model has (refused when the encoder
loads, before any shard). A two-tower checkpoint (CLIP, SigLIP) gives its projected text
embedding (`get_text_features`) and tokenizes as it was trained: its own context length (77
for CLIP, 64 for SigLIP) and padding (SigLIP pools the last position, so it pads to that length).

A caption is cut to `CHARS_PER_TOKEN` characters per kept token before it is tokenised: a
scraped caption of 10 MiB would otherwise be tokenised whole (a minute and gigabytes) only
for all but its first tokens to be dropped. No real caption reaches the cut: a WordPiece
token covers a handful of characters (100 at most, for an [UNK] word).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from curate.errors import CurateError
from curate.models.devices import autocast
from curate.models.joint import (
    feature_vectors,
    is_two_tower,
    joint_space,
    text_context,
    text_padding,
)
from curate.models.loading import load_model, load_pretrained
from curate.schemas.tables import EncoderInfo

POOLINGS = ("mean", "cls")
OPTION = "--text-model"
TOWER_INPUTS = ("input_ids", "attention_mask")  # what `get_text_features` takes of a tokenizer's output
CHARS_PER_TOKEN = 128


class TextEncoder:
    """Vectors for batches of captions.

    `model` lets a caller share one loaded two-tower checkpoint between both towers.
    """

    def __init__(self, name: str, *, device: torch.device, pooling: str = "mean", max_tokens: int = 77,
                 model: Any = None) -> None:
        from transformers import AutoTokenizer

        if pooling not in POOLINGS:
            raise CurateError(f"Unknown text pooling '{pooling}'; known: {', '.join(POOLINGS)}.")
        self.name, self.device, self.pooling = name, device, pooling
        self.tokenizer = load_pretrained(AutoTokenizer.from_pretrained, name, what="tokenizer", option=OPTION)
        model = model if model is not None else load_model(name, what="text model", option=OPTION)
        self.model = model.eval().to(device)
        self.two_tower = is_two_tower(model)
        if not self.two_tower:
            check_token_limit(name, max_tokens, token_limit(self.model.config, self.tokenizer))
        self.max_tokens = text_context(model, self.tokenizer) if self.two_tower else max_tokens
        self.padding = text_padding(model) if self.two_tower else "longest"
        self.dim = int(self.encode(["a"]).shape[1]) if self.two_tower else int(model.config.hidden_size)

    @classmethod
    def from_info(cls, info: EncoderInfo, *, device: torch.device) -> "TextEncoder":
        """The encoder that made vectors recorded as `info`, with the same pooling and truncation."""
        settings = info.settings
        return cls(info.model, device=device, pooling=settings.get("pooling", "mean"),
                   max_tokens=int(settings.get("max_tokens", 77)))

    @property
    def info(self) -> EncoderInfo:
        if self.two_tower:
            settings = {"tower": "text_embeds", "context": self.max_tokens, "padding": self.padding,
                        "joint_space": joint_space(self.model, self.dim)}
        else:
            settings = {"pooling": self.pooling, "max_tokens": self.max_tokens}
        return EncoderInfo(model=self.name, dim=self.dim, kind="text", settings=settings)

    def tokenize(self, texts: list[str]) -> dict[str, torch.Tensor]:
        """Pad as the model expects (the longest caption, or its context), truncated at `max_tokens`."""
        clipped = [clip_caption(text, self.max_tokens) for text in texts]
        return self.tokenizer(
            clipped, padding=self.padding, truncation=True, max_length=self.max_tokens, return_tensors="pt"
        )

    @torch.inference_mode()
    def encode(self, texts: list[str]) -> np.ndarray:
        """Captions -> (B, D) float32 vectors."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        tokens = self.tokenize(texts)
        if self.device.type == "cuda":  # pinned, so the copies below are asynchronous
            tokens = {k: v.pin_memory() for k, v in tokens.items()}
        batch = {k: v.to(self.device, non_blocking=True) for k, v in tokens.items()}
        with autocast(self.device):
            vectors = self._projected(batch) if self.two_tower else self._pooled(batch)
        return vectors.float().cpu().numpy()

    def _projected(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return feature_vectors(self.model.get_text_features(**{k: v for k, v in batch.items() if k in TOWER_INPUTS}))

    def _pooled(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        hidden = self.model(**batch).last_hidden_state.float()
        if self.pooling == "cls":
            return hidden[:, 0]
        mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)


def check_token_limit(name: str, max_tokens: int, limit: int | None) -> None:
    """Refuse a truncation the model cannot read, before any shard (it would die on the first long caption)."""
    if limit is not None and max_tokens > limit:
        raise CurateError(
            f"--max-text-tokens {max_tokens} is more than the text model {name} reads ({limit} tokens); "
            f"give --max-text-tokens {limit} or less."
        )


def clip_caption(text: str, max_tokens: int) -> str:
    """The part of `text` that can hold its first `max_tokens` tokens (see the module notes)."""
    return text[: max_tokens * CHARS_PER_TOKEN]


def token_limit(config: object, tokenizer: object) -> int | None:
    """How many tokens the model reads at most: its position table and the tokenizer's own
    limit (RoBERTa's table has two more rows than it can use); None when neither says."""
    known = [getattr(config, "max_position_embeddings", None), getattr(tokenizer, "model_max_length", None)]
    usable = [int(n) for n in known if isinstance(n, int) and 0 < n < 1_000_000]  # tokenizers say 1e30 for "no limit"
    return min(usable) if usable else None
