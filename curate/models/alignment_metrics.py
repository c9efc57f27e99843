"""Alignment metrics on projected vectors: ROC-AUC, recall@k, similarity spread.

Pure numpy over L2-normalised (N, D) arrays, so the same code judges any projection and the
tests can recompute each figure independently.
"""

from __future__ import annotations

import numpy as np

from curate.schemas.projection import ValidationMetrics

RECALL_KS = (1, 5, 10)
RANK_CHUNK = 1024  # query rows per similarity block: memory is RANK_CHUNK x N floats


def roc_auc(positive: np.ndarray, negative: np.ndarray) -> float:
    """Probability that a positive outscores a negative (ties count half): Mann-Whitney U."""
    scores = np.concatenate([positive, negative]).astype(np.float64)
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores), dtype=np.float64)
    ranks[order] = np.arange(1, len(scores) + 1)
    _, inverse, counts = np.unique(scores, return_inverse=True, return_counts=True)
    sums = np.bincount(inverse, weights=ranks)
    ranks = (sums / counts)[inverse]  # average rank within ties
    n_pos, n_neg = len(positive), len(negative)
    u = ranks[:n_pos].sum() - n_pos * (n_pos + 1) / 2
    return float(u / (n_pos * n_neg))


def match_ranks(queries: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """For each query i, how many candidates score strictly above its own candidate i."""
    ranks = np.empty(len(queries), dtype=np.int64)
    for start in range(0, len(queries), RANK_CHUNK):
        block = queries[start:start + RANK_CHUNK] @ candidates.T
        rows = np.arange(len(block))
        own = block[rows, rows + start]
        ranks[start:start + len(block)] = (block > own[:, None]).sum(axis=1)
    return ranks


def derangement(n: int, *, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(image rows, text rows) pairing every image with another row's caption, reproducibly."""
    order = np.random.default_rng(seed).permutation(n)
    return order, np.roll(order, -1)


def alignment_metrics(image: np.ndarray, text: np.ndarray, *, seed: int) -> ValidationMetrics:
    """Matched pairs against the same images with shuffled captions, plus retrieval recall."""
    matched = np.einsum("nd,nd->n", image, text)
    rows, others = derangement(len(image), seed=seed)
    mismatched = np.einsum("nd,nd->n", image[rows], text[others])
    i2t, t2i = match_ranks(image, text), match_ranks(text, image)
    recall = {f"image_to_text_r{k}": float((i2t < k).mean()) for k in RECALL_KS}
    recall |= {f"text_to_image_r{k}": float((t2i < k).mean()) for k in RECALL_KS}
    return ValidationMetrics(
        pairs=len(image),
        roc_auc=roc_auc(matched, mismatched),
        matched_mean=float(matched.mean()), matched_std=float(matched.std()),
        mismatched_mean=float(mismatched.mean()), mismatched_std=float(mismatched.std()),
        **recall,
    )
