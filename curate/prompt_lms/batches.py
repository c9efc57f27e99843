"""Prepared prompt tables as model batches: Arrow text columns in, padded tensors out.

Only the text columns a recipe needs are read (memory-mapped file, Arrow strings: a few
hundred MB for millions of prompts, no Python objects per row), and rows become Python
strings and token ids a batch at a time, so memory does not grow with tokenization.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch

from curate.errors import CurateError

IGNORE_INDEX = -100  # label value the losses skip: padding


@dataclass(frozen=True)
class PromptRows:
    """Source and target texts of one split as Arrow arrays (the concept recipe has no sources)."""

    sources: pa.ChunkedArray | None
    targets: pa.ChunkedArray

    def __len__(self) -> int:
        return len(self.targets)

    def texts(self, indices: np.ndarray) -> tuple[list[str] | None, list[str]]:
        take = pa.array(indices, type=pa.int64())
        sources = self.sources.take(take).to_pylist() if self.sources is not None else None
        return sources, self.targets.take(take).to_pylist()


def load_rows(path: Path, recipe: str) -> PromptRows:
    """Concept: the tagged prompts; upsample: plain -> detailed pairs."""
    columns = ["tagged"] if recipe == "concept" else ["plain", "text"]
    try:
        table = pq.read_table(path, columns=columns, memory_map=True)
    except (OSError, KeyError, pa.ArrowInvalid) as exc:
        raise CurateError(f"Could not read {path} as a prepared prompt table ({exc.__class__.__name__}).") from None
    if recipe == "concept":
        return PromptRows(sources=None, targets=table.column("tagged"))
    return PromptRows(sources=table.column("plain"), targets=table.column("text"))


class Batcher:
    """Turns text rows into the model's keyword arguments, labels included."""

    def __init__(self, tokenizer: Any, *, recipe: str, max_tokens: int, prefix: str = "") -> None:
        self.tokenizer, self.recipe, self.max_tokens, self.prefix = tokenizer, recipe, max_tokens, prefix

    def __call__(self, sources: list[str] | None, targets: list[str]) -> dict[str, torch.Tensor]:
        if self.recipe == "concept":
            return self._causal(targets)
        return self._seq2seq(sources or [], targets)

    def _causal(self, texts: list[str]) -> dict[str, torch.Tensor]:
        """Next-token prediction over the whole tagged prompt; padding is not learned.

        The tokenizer pads on the left (generation continues the right end of every row), so
        positions are counted from each row's first real token, as `generate` counts them:
        without explicit position ids a short row would be trained at the positions of the
        longest row in its batch and generated at others.
        """
        batch = self.tokenizer(texts, padding=True, truncation=True, max_length=self.max_tokens, return_tensors="pt")
        labels = batch["input_ids"].clone()
        labels[batch["attention_mask"] == 0] = IGNORE_INDEX
        return {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"], "labels": labels,
                "position_ids": positions(batch["attention_mask"])}

    def _seq2seq(self, sources: list[str], targets: list[str]) -> dict[str, torch.Tensor]:
        inputs = self.tokenizer([self.prefix + s for s in sources], padding=True, truncation=True,
                                max_length=self.max_tokens, return_tensors="pt")
        labels = self.tokenizer(text_target=targets, padding=True, truncation=True,
                                max_length=self.max_tokens, return_tensors="pt")
        ids = labels["input_ids"].clone()
        ids[labels["attention_mask"] == 0] = IGNORE_INDEX
        return {"input_ids": inputs["input_ids"], "attention_mask": inputs["attention_mask"], "labels": ids}


def positions(attention_mask: torch.Tensor) -> torch.Tensor:
    """Position of every token counted from its row's first real one (padding gets 0, and is masked)."""
    return (attention_mask.long().cumsum(-1) - 1).clamp(min=0)


def batch_indices(count: int, *, batch_size: int, seed: int | None) -> Iterator[np.ndarray]:
    """Row indices in batches: shuffled by `seed` (an epoch-specific seed), or in order."""
    order = np.arange(count) if seed is None else np.random.default_rng(seed).permutation(count)
    for start in range(0, count, batch_size):
        yield order[start:start + batch_size]
