"""The text tower: a BERT-family encoder giving one pooled vector per caption.

`bert-base-uncased` (768-d) is the default. Pooling is `mean` (masked mean over tokens) or
`cls` (the first token's hidden state); captions are truncated to `max_tokens`, which may not
exceed the positions the model has (refused when the encoder loads, before any shard).

A caption is cut to `CHARS_PER_TOKEN` characters per kept token before it is tokenised: a
scraped caption of 10 MiB would otherwise be tokenised whole (a minute and gigabytes) only
for all but its first tokens to be dropped. No real caption reaches the cut: a WordPiece
token covers a handful of characters (100 at most, for an [UNK] word).
"""

from __future__ import annotations

import numpy as np
import torch

from curate.errors import CurateError
from curate.models.devices import autocast
from curate.models.loading import load_pretrained
from curate.schemas.tables import EncoderInfo

POOLINGS = ("mean", "cls")
CHARS_PER_TOKEN = 128


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
        limit = token_limit(self.model.config, self.tokenizer)
        if limit is not None and max_tokens > limit:
            raise CurateError(
                f"--max-text-tokens {max_tokens} is more than the text model {name} reads ({limit} tokens); "
                f"give --max-text-tokens {limit} or less."
            )

    @property
    def info(self) -> EncoderInfo:
        settings = {"pooling": self.pooling, "max_tokens": self.max_tokens}
        return EncoderInfo(model=self.name, dim=self.dim, kind="text", settings=settings)

    def tokenize(self, texts: list[str]) -> dict[str, torch.Tensor]:
        """Pad to the longest caption in the batch, truncated at `max_tokens`."""
        clipped = [clip_caption(text, self.max_tokens) for text in texts]
        return self.tokenizer(
            clipped, padding=True, truncation=True, max_length=self.max_tokens, return_tensors="pt"
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


def clip_caption(text: str, max_tokens: int) -> str:
    """The part of `text` that can hold its first `max_tokens` tokens (see the module notes)."""
    return text[: max_tokens * CHARS_PER_TOKEN]


def token_limit(config: object, tokenizer: object) -> int | None:
    """How many tokens the model reads at most: its position table and the tokenizer's own
    limit (RoBERTa's table has two more rows than it can use); None when neither says."""
    known = [getattr(config, "max_position_embeddings", None), getattr(tokenizer, "model_max_length", None)]
    usable = [int(n) for n in known if isinstance(n, int) and 0 < n < 1_000_000]  # tokenizers say 1e30 for "no limit"
    return min(usable) if usable else None
