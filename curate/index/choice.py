"""Which index kind a run gets, from its row count and the `--max-index-memory` budget.

The rules, cheapest to understand first:

1. Up to `FLAT_MAX_ROWS` rows (100k on CPU, 1M on GPU) an exact flat index, if it fits:
   brute force is fast enough there and recall is 1 by construction.
2. Above that, IVF-Flat if it fits: full vectors (exact scores), a k-means pass to train,
   the fastest build on a CPU, and `nprobe` tuned until recall@10 reaches the target.
3. Otherwise IVF-PQ with re-ranking, about 3.5x smaller than flat at 256 dimensions.
4. Nothing fits: one line saying how much memory the smallest kind needs.

HNSW is never chosen automatically: it has the fastest queries but keeps full vectors plus
graph links and its build is the slowest on a CPU (see docs/index.md for the figures);
ask for it with `--index-type hnsw`.
"""

from __future__ import annotations

from curate.errors import CurateError
from curate.index.kinds import MIN_PQ_ROWS, IndexPlan, plan_flat, plan_index
from curate.units import format_size

FLAT_MAX_ROWS = {False: 100_000, True: 1_000_000}  # by "a GPU is used"
AUTO_APPROXIMATE = ("ivf-flat", "ivf-pq")


def choose_plan(requested: str, rows: int, dim: int, *, budget: int, gpu: bool = False) -> IndexPlan:
    """The plan for `requested` (`auto` or a kind), refusing one that would exceed `budget`."""
    if requested != "auto":
        return _forced(requested, rows, dim, budget)
    flat = plan_flat(rows, dim)
    if rows <= FLAT_MAX_ROWS[gpu] and flat.memory_bytes <= budget:
        return flat
    plans = [plan_index(kind, rows, dim) for kind in AUTO_APPROXIMATE if kind != "ivf-pq" or rows >= MIN_PQ_ROWS]
    for plan in plans:
        if plan.memory_bytes <= budget:
            return plan
    smallest = min(plans + [flat], key=lambda p: p.memory_bytes)
    raise CurateError(
        f"No index of {rows:,} x {dim}-d vectors fits --max-index-memory {format_size(budget)}; "
        f"the smallest ({smallest.kind}) needs about {format_size(smallest.memory_bytes)}."
    )


def _forced(kind: str, rows: int, dim: int, budget: int) -> IndexPlan:
    """A kind the user named is honoured, but never past the budget: that would fail later, and worse."""
    plan = plan_index(kind, rows, dim)
    if plan.memory_bytes > budget:
        raise CurateError(
            f"--index-type {kind} needs about {format_size(plan.memory_bytes)} for {rows:,} x {dim}-d vectors, "
            f"over --max-index-memory {format_size(budget)}; raise the budget or use --index-type auto."
        )
    return plan
