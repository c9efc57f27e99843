"""BERTScore with any BERT-family encoder the tool can load: greedy matching of token vectors.

Zhang et al.'s recipe: embed candidate and reference with the same contextual encoder,
L2-normalise every token vector (special tokens dropped), match each candidate token to its
most similar reference token (precision) and each reference token to its most similar
candidate token (recall); F1 is their harmonic mean. Not included, on purpose: idf
weighting (needs a reference corpus) and baseline rescaling (needs published baseline
files); scores are raw cosine averages, comparable only between runs using the same
encoder and `layer`. Loaded through `load_pretrained`, so it works offline with a local dir.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from curate.models.loading import load_pretrained


@dataclass(frozen=True)
class BertScores:
    """Per-candidate precision, recall and F1 (each an (N,) float array)."""

    precision: np.ndarray
    recall: np.ndarray
    f1: np.ndarray


class BertScorer:
    """Token vectors from one encoder layer (default: the last) and greedy matching."""

    def __init__(self, name: str, *, device: torch.device, layer: int | None = None, max_tokens: int = 128,
                 option: str = "--score-model") -> None:
        from transformers import AutoModel, AutoTokenizer

        self.name, self.device, self.layer, self.max_tokens = name, device, layer, max_tokens
        self.tokenizer = load_pretrained(AutoTokenizer.from_pretrained, name, what="BERTScore tokenizer", option=option)
        model = load_pretrained(AutoModel.from_pretrained, name, what="BERTScore encoder", option=option)
        self.model = model.eval().to(device)

    @torch.inference_mode()
    def token_vectors(self, texts: Sequence[str]) -> list[torch.Tensor]:
        """One (tokens, dim) unit-norm matrix per text, special tokens removed."""
        batch = self.tokenizer(list(texts), padding=True, truncation=True, max_length=self.max_tokens,
                               return_tensors="pt", return_special_tokens_mask=True)
        special = batch.pop("special_tokens_mask").bool()
        batch = {k: v.to(self.device) for k, v in batch.items()}
        out = self.model(**batch, output_hidden_states=self.layer is not None)
        hidden = out.last_hidden_state if self.layer is None else out.hidden_states[self.layer]
        hidden = torch.nn.functional.normalize(hidden.float(), dim=-1).cpu()
        keep = batch["attention_mask"].cpu().bool() & ~special
        return [hidden[i][keep[i]] for i in range(len(texts))]

    def score(self, candidates: Sequence[str], references: Sequence[Sequence[str]], *, batch_size: int = 32) -> BertScores:
        """Each candidate against its references; with several, the best-F1 reference counts."""
        rows = [(i, ref) for i, refs in enumerate(references) for ref in refs]
        best = np.zeros((len(candidates), 3), dtype=np.float64)
        for start in range(0, len(rows), batch_size):
            chunk = rows[start:start + batch_size]
            cand = self.token_vectors([candidates[i] for i, _ in chunk])
            refs = self.token_vectors([ref for _, ref in chunk])
            for (i, _), c, r in zip(chunk, cand, refs):
                prf = greedy_match(c, r)
                if prf[2] >= best[i, 2]:
                    best[i] = prf
        return BertScores(precision=best[:, 0], recall=best[:, 1], f1=best[:, 2])


def greedy_match(candidate: torch.Tensor, reference: torch.Tensor) -> tuple[float, float, float]:
    """(P, R, F1) of two unit-norm token matrices; empty texts score 0."""
    if len(candidate) == 0 or len(reference) == 0:
        return 0.0, 0.0, 0.0
    sim = candidate @ reference.T
    precision = sim.max(dim=1).values.mean().item()
    recall = sim.max(dim=0).values.mean().item()
    f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    return precision, recall, f1
