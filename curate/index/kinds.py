"""The index kinds `curate index` can build, as plans: factory string, memory, search ladder.

Every kind is inner product over L2-normalised vectors, so scores are cosines. A plan says
what FAISS should build for `rows` vectors of `dim` dimensions, how much memory it will
take (the figure the automatic choice compares with `--max-index-memory`), how many rows
to train on, and the search settings to try, cheapest first, until the measured recall@10
reaches the target.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable

from curate.errors import CurateError
from curate.schemas.config.vectors import INDEX_KIND_NAMES

FLOAT_BYTES = 4
ID_BYTES = 8  # IVF lists store an int64 id per vector
LISTS_PER_SQRT_ROW = 4  # nlist ~ 4 sqrt(n): FAISS's usual lower end, cheapest to train on a CPU
TRAIN_POINTS_PER_LIST = 40  # k-means wants at least 39 points per centroid
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 64
PQ_DIMS_PER_CODE = 8  # one 4-bit code per 8 dimensions, re-ranked with 8-bit scalar codes
MIN_PQ_ROWS = 256
MAX_K_FACTOR = 64


@dataclass(frozen=True)
class IndexPlan:
    """What to build and how to search it; `build` values are recorded in the card."""

    kind: str
    factory: str
    memory_bytes: int
    train_rows: int = 0
    build: dict[str, int] = field(default_factory=dict)
    ladder: tuple[dict[str, int], ...] = ({},)

    @property
    def exact(self) -> bool:
        return self.kind == "flat"


def doubling(start: int, stop: int) -> list[int]:
    """start, 2*start, ... up to and including `stop`."""
    values, value = [], start
    while value < stop:
        values.append(value)
        value *= 2
    return values + [stop]


def ivf_lists(rows: int) -> int:
    """~4 sqrt(n) inverted lists, but never so many that a list trains on fewer than 39 points."""
    return max(1, min(round(LISTS_PER_SQRT_ROW * math.sqrt(rows)), rows // 39))


def pq_codes(dim: int) -> int:
    """Sub-quantizers for `dim`: about one per 8 dimensions, and a divisor of `dim` as PQ needs."""
    for m in range(max(dim // PQ_DIMS_PER_CODE, 1), 0, -1):
        if dim % m == 0:
            return m
    return 1


def plan_flat(rows: int, dim: int) -> IndexPlan:
    """Exact brute force: every vector in float32, nothing to train or tune."""
    return IndexPlan("flat", "Flat", rows * dim * FLOAT_BYTES)


def plan_ivf_flat(rows: int, dim: int) -> IndexPlan:
    """k-means lists holding full vectors: exact scores, approximate only in which lists are probed."""
    nlist = ivf_lists(rows)
    memory = rows * (dim * FLOAT_BYTES + ID_BYTES) + nlist * dim * FLOAT_BYTES
    ladder = tuple({"nprobe": p} for p in doubling(1, nlist))
    return IndexPlan("ivf-flat", f"IVF{nlist},Flat", memory, min(rows, TRAIN_POINTS_PER_LIST * nlist),
                     {"nlist": nlist}, ladder)


def plan_ivf_pq(rows: int, dim: int) -> IndexPlan:
    """IVF lists of 4-bit PQ codes, candidates re-ranked with 8-bit scalar codes (~3.5x smaller than flat)."""
    if rows < MIN_PQ_ROWS:
        raise CurateError(f"--index-type ivf-pq needs at least {MIN_PQ_ROWS} rows to train its codebooks (this run has {rows}).")
    nlist, m = ivf_lists(rows), pq_codes(dim)
    memory = rows * (math.ceil(m / 2) + dim + ID_BYTES) + nlist * dim * FLOAT_BYTES
    ladder = tuple({"nprobe": p, "k_factor_rf": min(max(2 * p, 8), MAX_K_FACTOR)} for p in doubling(1, nlist))
    return IndexPlan("ivf-pq", f"IVF{nlist},PQ{m}x4fs,Refine(SQ8)", memory, min(rows, TRAIN_POINTS_PER_LIST * nlist),
                     {"nlist": nlist, "m": m}, ladder)


def plan_hnsw(rows: int, dim: int) -> IndexPlan:
    """A proximity graph over full vectors: fastest queries, slowest build, no compression."""
    links = 2 * HNSW_M * 4 * 1.1  # level-0 links plus the upper levels, int32 each
    memory = int(rows * (dim * FLOAT_BYTES + links + 16))
    ladder = tuple({"efSearch": e} for e in doubling(16, 1024))
    return IndexPlan("hnsw", f"HNSW{HNSW_M}", memory, 0, {"M": HNSW_M, "efConstruction": HNSW_EF_CONSTRUCTION}, ladder)


INDEX_KINDS: dict[str, Callable[[int, int], IndexPlan]] = {
    "flat": plan_flat,
    "ivf-flat": plan_ivf_flat,
    "ivf-pq": plan_ivf_pq,
    "hnsw": plan_hnsw,
}
assert tuple(INDEX_KINDS) == INDEX_KIND_NAMES, "the --index-type names and the registry must agree"


def plan_index(kind: str, rows: int, dim: int) -> IndexPlan:
    """The plan of `kind`, refusing unknown names with the known ones."""
    if kind not in INDEX_KINDS:
        raise CurateError(f"Unknown index type '{kind}'; known: auto, {', '.join(INDEX_KINDS)}.")
    return INDEX_KINDS[kind](rows, dim)


def create_index(plan: IndexPlan, dim: int) -> Any:
    """An empty CPU index for `plan` (inner product), with its build-time settings applied."""
    from curate.index.faiss_lib import import_faiss

    faiss = import_faiss()
    index = faiss.index_factory(dim, plan.factory, faiss.METRIC_INNER_PRODUCT)
    if "efConstruction" in plan.build:
        index.hnsw.efConstruction = plan.build["efConstruction"]
    return index
