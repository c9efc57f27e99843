"""The text tower: one vector per caption, from a BERT-family encoder or a CLIP-family checkpoint.

`bert-base-uncased` (768-d) is the default. A BERT-family encoder is pooled with `mean`
(masked mean over tokens) or `cls` (the first token's hidden state), captions truncated to
`max_tokens`. A two-tower checkpoint (CLIP, SigLIP) gives its projected text embedding
(`get_text_features`) and tokenizes as it was trained: its own context length (77 for CLIP,
64 for SigLIP) and padding (SigLIP pools the last position, so it pads to that length).
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
        return self.tokenizer(
            texts, padding=self.padding, truncation=True, max_length=self.max_tokens, return_tensors="pt"
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
