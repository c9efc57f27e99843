"""The image-to-prompt captioner: image features -> prefix embeddings -> GPT-2 writes the prompt.

The published design: a pooled image feature (2048-d for ResNet-50) goes through a linear
layer to 512 and another to the decoder's width; that vector sits before the prompt's token
embeddings, and the decoder learns the prompt token by token (cross-entropy on the prompt
tokens only; the prefix and padding carry label -100). ClipCap-style captioners map the
feature to several prefix vectors through a small MLP instead (`prefix_length` > 1: a tanh
between the two layers, the second one `prefix_length` times as wide). Any GPT-2-family
causal LM (hub id or local directory) can be the decoder.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from curate.captioner.config import DecodeConfig
from curate.errors import CurateError
from curate.models.loading import load_pretrained
from curate.models.projection import Standardiser

IGNORE_INDEX = -100  # the label cross-entropy skips


class PrefixMapper(nn.Module):
    """Image feature -> Linear(hidden; 512 by default) [-> tanh] -> Linear(length x decoder width).

    `length` 1 is the published design, two linear layers and one prefix vector; a longer
    prefix is ClipCap's MLP mapper (a tanh between the layers; without it the two layers
    would collapse into one linear map of rank `hidden`). Features are first standardised
    with the training set's statistics (stored as buffers, so they travel in the weights
    file): pooled features share a large common offset that would otherwise drown the
    differences between images.
    """

    def __init__(self, image_dim: int, width: int, *, hidden: int, length: int = 1) -> None:
        super().__init__()
        self.image_dim, self.width, self.hidden, self.length = image_dim, width, hidden, length
        self.norm = Standardiser(image_dim)
        self.to_hidden = nn.Linear(image_dim, hidden)
        self.activation = nn.Tanh() if length > 1 else nn.Identity()
        self.to_width = nn.Linear(hidden, width * length)

    def fit(self, features: np.ndarray) -> None:
        """Set the standardisation from training features (N, image_dim)."""
        features = features.astype(np.float64)
        self.norm.fit(features.mean(axis=0), features.std(axis=0))

    def forward(self, features: Tensor) -> Tensor:
        """(B, image_dim) -> (B, length, width)."""
        mapped = self.to_width(self.activation(self.to_hidden(self.norm(features))))
        return mapped.view(len(features), self.length, self.width)


@dataclass
class TokenBatch:
    """Right-padded prompt tokens (each ending in EOS) and their attention mask."""

    input_ids: Tensor
    attention_mask: Tensor

    def to(self, device: torch.device) -> "TokenBatch":
        return TokenBatch(self.input_ids.to(device), self.attention_mask.to(device))


def load_tokenizer(name: str, *, hint: str | None = None) -> Any:
    """A GPT-2-family tokenizer; GPT-2 has no pad token, so EOS doubles as padding.

    `hint` is the advice on failure when the tokenizer comes from a checkpoint, not --decoder.
    """
    from transformers import AutoTokenizer

    tokenizer = load_pretrained(AutoTokenizer.from_pretrained, name, what="tokenizer", option="--decoder", hint=hint)
    if tokenizer.eos_token_id is None:
        advice = hint or "pass a GPT-2-family --decoder"
        raise CurateError(f"The tokenizer of '{name}' has no end-of-text token; {advice}.")
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_decoder(name: str, *, hint: str | None = None) -> nn.Module:
    """A causal LM whose input embeddings accept a prefix (GPT-2 family)."""
    from transformers import AutoModelForCausalLM

    return load_pretrained(AutoModelForCausalLM.from_pretrained, name, what="decoder", option="--decoder", hint=hint)


def encode_prompts(tokenizer: Any, texts: list[str], *, max_tokens: int) -> list[list[int]]:
    """Token ids per prompt, truncated so that the appended EOS still fits in `max_tokens`."""
    ids = tokenizer(texts, add_special_tokens=False, truncation=True, max_length=max_tokens - 1)["input_ids"]
    return [list(row) + [tokenizer.eos_token_id] for row in ids]


def pad_tokens(rows: list[list[int]], *, pad_id: int) -> TokenBatch:
    """Right-pad to the longest row; the mask, not the pad id, marks padding (pad == EOS in GPT-2)."""
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, : len(row)] = torch.tensor(row, dtype=torch.long)
        mask[i, : len(row)] = 1
    return TokenBatch(ids, mask)


class Captioner(nn.Module):
    """Prefix mapper + decoder; the image tower lives apart (frozen features or trained with it)."""

    def __init__(self, mapper: PrefixMapper, decoder: nn.Module, tokenizer: Any) -> None:
        super().__init__()
        self.mapper, self.decoder, self.tokenizer = mapper, decoder, tokenizer

    @property
    def device(self) -> torch.device:
        return next(self.mapper.parameters()).device

    def loss(self, features: Tensor, tokens: TokenBatch) -> tuple[Tensor, int]:
        """Mean cross-entropy over the prompt tokens, and how many tokens it averaged."""
        prefix = self.mapper(features.to(self.mapper.to_hidden.weight.dtype))
        embeds = torch.cat([prefix, self.decoder.get_input_embeddings()(tokens.input_ids)], dim=1)
        ones = torch.ones(prefix.shape[:2], dtype=tokens.attention_mask.dtype, device=prefix.device)
        mask = torch.cat([ones, tokens.attention_mask], dim=1)
        labels = tokens.input_ids.masked_fill(tokens.attention_mask == 0, IGNORE_INDEX)
        labels = torch.cat([torch.full_like(ones, IGNORE_INDEX), labels], dim=1)
        out = self.decoder(inputs_embeds=embeds, attention_mask=mask, labels=labels)
        return out.loss, int(tokens.attention_mask.sum())

    @torch.inference_mode()
    def generate(self, features: Tensor, *, settings: DecodeConfig) -> list[str]:
        """Prompts for a batch of image features; the decoder sees only the prefix as context."""
        prefix = self.mapper(features.to(self.device, self.mapper.to_hidden.weight.dtype))
        mask = torch.ones(prefix.shape[:2], dtype=torch.long, device=prefix.device)
        out = self.decoder.generate(
            inputs_embeds=prefix, attention_mask=mask, eos_token_id=self.tokenizer.eos_token_id,
            pad_token_id=self.tokenizer.pad_token_id, **generate_kwargs(settings),
        )
        return [t.strip() for t in self.tokenizer.batch_decode(out, skip_special_tokens=True)]


def generate_kwargs(settings: DecodeConfig) -> dict[str, Any]:
    """The `generate` arguments; sampling knobs only when sampling, so greedy stays exact."""
    kwargs: dict[str, Any] = {
        "max_new_tokens": settings.max_length, "num_beams": settings.num_beams,
        "do_sample": settings.sample, "repetition_penalty": settings.repetition_penalty,
    }
    if settings.sample:
        kwargs.update(top_p=settings.top_p, temperature=settings.temperature, top_k=0)
    else:
        kwargs.update(top_p=None, temperature=None, top_k=None)
    return kwargs
