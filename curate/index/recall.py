"""Measured recall: exact neighbours by brute force, and search settings tuned to a target.

An approximate index is only as useful as its recall, and recall depends on the data, so
it is measured rather than assumed: a sample of the indexed vectors is searched exactly
(streaming over the vector file, so memory stays one chunk) and with the index, and the
cheapest setting on the kind's ladder that reaches the target is kept.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from curate.index.faiss_lib import import_faiss, set_search_params
from curate.io.vectorfile import VectorFile


def sample_rows(total: int, count: int, *, seed: int) -> np.ndarray:
    """`count` distinct row numbers out of `total`, sorted, reproducible from `seed`."""
    if count >= total:
        return np.arange(total, dtype=np.int64)
    return np.sort(np.random.default_rng(seed).choice(total, size=count, replace=False)).astype(np.int64)


def exact_neighbours(queries: np.ndarray, vectors: VectorFile, k: int) -> np.ndarray:
    """Ids of the exact top-k inner products of each query over every row of `vectors`."""
    faiss = import_faiss()
    heap = faiss.ResultHeap(len(queries), k, keep_max=True)
    for start, block in vectors.chunks():
        scores, ids = faiss.knn(queries, block, min(k, len(block)), metric=faiss.METRIC_INNER_PRODUCT)
        if scores.shape[1] < k:  # a last chunk shorter than k
            pad = k - scores.shape[1]
            scores = np.pad(scores, ((0, 0), (0, pad)), constant_values=-np.inf)
            ids = np.pad(ids, ((0, 0), (0, pad)), constant_values=-1 - start)
        heap.add_result(np.ascontiguousarray(scores, dtype=np.float32), np.ascontiguousarray(ids + start, dtype=np.int64))
    heap.finalize()
    return heap.I


def recall_at(found: np.ndarray, truth: np.ndarray) -> float:
    """Mean share of each query's true top-k that the index returned (k = truth's width)."""
    k = truth.shape[1]
    hits = [len(np.intersect1d(f[f >= 0], t[t >= 0])) / k for f, t in zip(found, truth)]
    return float(np.mean(hits)) if hits else 1.0


def tune(index: Any, ladder: Sequence[dict[str, int]], queries: np.ndarray, truth: np.ndarray, *,
         target: float, on_gpu: bool) -> tuple[dict[str, int], float]:
    """The first settings on `ladder` whose recall reaches `target` (else the last), with that recall."""
    settings, recall = dict(ladder[-1]), 0.0
    for step in ladder:
        set_search_params(index, step, on_gpu=on_gpu)
        _, found = index.search(queries, truth.shape[1])
        settings, recall = dict(step), recall_at(found, truth)
        if recall >= target:
            break
    return settings, recall
