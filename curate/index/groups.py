"""Connected components of a similarity graph: which rows end up in one duplicate group.

Near-duplicate pairs come from k-NN search as edges; a group is what those edges connect
(A~B and B~C put A, B and C together even when A and C were not each other's neighbours).
Min-label propagation with pointer jumping, in numpy: a handful of vectorised passes even
for millions of edges, and no Python loop per edge.
"""

from __future__ import annotations

import numpy as np


def connected_components(count: int, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """For each of `count` nodes, the smallest node id of its component (int64)."""
    labels = np.arange(count, dtype=np.int64)
    left, right = np.asarray(left, dtype=np.int64), np.asarray(right, dtype=np.int64)
    if len(left) == 0:
        return labels
    while True:
        low = np.minimum(labels[left], labels[right])
        new = labels.copy()
        np.minimum.at(new, left, low)
        np.minimum.at(new, right, low)
        np.minimum.at(new, labels, new)  # a root learns its members' smaller label
        new = new[new]  # pointer jumping: follow labels towards the root
        if np.array_equal(new, labels):
            return labels
        labels = new


def group_sizes(labels: np.ndarray) -> np.ndarray:
    """How many rows share each row's label."""
    return np.bincount(labels, minlength=len(labels))[labels]
