"""The text tower: a BERT-family encoder giving one pooled vector per caption.

`bert-base-uncased` (768-d) is the default. Pooling is `mean` (masked mean over tokens) or
`cls` (the first token's hidden state); captions are truncated to `max_tokens`.
"""

from __future__ import annotations

import numpy as np
import torch

from curate.errors import CurateError
from curate.models.devices import autocast
from curate.models.loading import load_pretrained
from curate.schemas.tables import EncoderInfo

POOLINGS = ("mean", "cls")


class TextEncoder:
    """Pooled features for batches of captions."""

    def __init__(self, name: str, *, device: torch.device, pooling: str = "mean", max_tokens: int = 77) -> None:
        from transformers import AutoModel, AutoTokenizer

        if pooling not in POOLINGS:
            raise CurateError(f"Unknown text pooling '{pooling}'; known: {', '.join(POOLINGS)}.")
        self.name, self.device, self.pooling, self.max_tokens = name, device, pooling, max_tokens
        self.tokenizer = load_pretrained(AutoTokenizer.from_pretrained, name, what="tokenizer", option="--text-model")
        model = load_pretrained(AutoModel.from_pretrained, name, what="text model", option="--text-model")
        self.model = model.eval().to(device)
        self.dim = int(self.model.config.hidden_size)

    @property
    def info(self) -> EncoderInfo:
        settings = {"pooling": self.pooling, "max_tokens": self.max_tokens}
        return EncoderInfo(model=self.name, dim=self.dim, kind="text", settings=settings)

    def tokenize(self, texts: list[str]) -> dict[str, torch.Tensor]:
        """Pad to the longest caption in the batch, truncated at `max_tokens`."""
        return self.tokenizer(
            texts, padding=True, truncation=True, max_length=self.max_tokens, return_tensors="pt"
        )

    @torch.inference_mode()
    def encode(self, texts: list[str]) -> np.ndarray:
        """Captions -> (B, D) float32 pooled features."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        batch = {k: v.to(self.device, non_blocking=True) for k, v in self.tokenize(texts).items()}
        with autocast(self.device):
            hidden = self.model(**batch).last_hidden_state.float()
        if self.pooling == "cls":
            pooled = hidden[:, 0]
        else:
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)
        return pooled.cpu().numpy()
