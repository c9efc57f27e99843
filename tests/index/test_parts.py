"""The index room's pieces: choice rules, plans, exact neighbours and recall, grouping, vector files, sizes."""

from __future__ import annotations

import numpy as np
import pytest

from curate.errors import CurateError
from curate.index.choice import choose_plan
from curate.index.groups import connected_components, group_sizes
from curate.index.kinds import INDEX_KINDS, doubling, ivf_lists, plan_index, pq_codes
from curate.index.recall import exact_neighbours, recall_at, sample_rows
from curate.io.vectorfile import VectorFile
from curate.units import format_size, parse_size

GB = 1_000_000_000


@pytest.mark.parametrize(
    "rows, budget, gpu, kind",
    [
        (50_000, 2 * GB, False, "flat"),  # small: exact
        (100_000, 2 * GB, False, "flat"),
        (100_001, 2 * GB, False, "ivf-flat"),  # large: approximate even though flat would fit
        (1_000_000, 2 * GB, False, "ivf-flat"),  # 1M x 256-d: ~1.03 GB of IVF-Flat
        (1_000_000, 2 * GB, True, "flat"),  # a GPU brute-forces a million rows
        (1_000_000, 600_000_000, False, "ivf-pq"),  # only the compressed kind fits
        (50_000, 20_000_000, False, "ivf-pq"),  # small but over budget: compressed
    ],
)
def test_auto_choice_follows_rows_and_budget(rows, budget, gpu, kind):
    assert choose_plan("auto", rows, 256, budget=budget, gpu=gpu).kind == kind


def test_nothing_fits_and_forced_kinds_over_budget_are_refused_in_one_line():
    with pytest.raises(CurateError, match="smallest .* needs about"):
        choose_plan("auto", 10_000_000, 256, budget=100_000_000)
    with pytest.raises(CurateError, match="--index-type hnsw needs about"):
        choose_plan("hnsw", 1_000_000, 256, budget=GB)
    with pytest.raises(CurateError, match="known: auto, flat, ivf-flat, ivf-pq, hnsw"):
        plan_index("lsh", 10, 8)
    with pytest.raises(CurateError, match="at least 256 rows"):
        plan_index("ivf-pq", 100, 8)


def test_plans_follow_faiss_guidance():
    assert ivf_lists(1_000_000) == 4000 and ivf_lists(1000) == 25 and ivf_lists(10) == 1
    assert pq_codes(256) == 32 and pq_codes(384) == 48 and 30 % pq_codes(30) == 0
    assert doubling(1, 12) == [1, 2, 4, 8, 12]
    ivf = plan_index("ivf-flat", 1_000_000, 256)
    assert ivf.factory == "IVF4000,Flat" and ivf.train_rows == 160_000 and ivf.ladder[-1] == {"nprobe": 4000}
    sizes = {kind: plan_index(kind, 1_000_000, 256).memory_bytes for kind in INDEX_KINDS}
    assert sizes["ivf-pq"] < sizes["flat"] < sizes["ivf-flat"] < sizes["hnsw"]


def test_exact_neighbours_stream_over_chunks_and_recall_counts_overlap(tmp_path):
    rng = np.random.default_rng(0)
    data = rng.standard_normal((1000, 8)).astype(np.float32)
    vectors = VectorFile(tmp_path / "v.f32", 8)
    for start in range(0, 1000, 300):
        vectors.append(data[start:start + 300])
    vectors.finish()
    queries = data[sample_rows(1000, 20, seed=1)]
    expected = np.argsort(-(queries @ data.T), axis=1)[:, :10]
    import curate.io.vectorfile as vf

    old, vf.CHUNK_ROWS = vf.CHUNK_ROWS, 128  # many chunks, and a short last one
    try:
        found = exact_neighbours(queries, vectors, 10)
    finally:
        vf.CHUNK_ROWS = old
    assert np.array_equal(np.sort(found, axis=1), np.sort(expected, axis=1))
    assert recall_at(found, expected) == 1.0
    half = expected.copy()
    half[:, 5:] = -1
    assert recall_at(half, expected) == 0.5


def test_vector_file_reads_slices_and_gathers_rows_in_any_order(tmp_path):
    data = np.arange(70 * 4, dtype=np.float32).reshape(70, 4)
    vectors = VectorFile(tmp_path / "v.f32", 4)
    vectors.append(data[:33])
    vectors.append(data[33:])
    vectors.finish()
    assert vectors.rows == 70 and np.array_equal(vectors.read(10, 20), data[10:20])
    ids = np.array([69, 0, 34, 33, 5])
    assert np.array_equal(vectors.take(ids, rows=16), data[ids])


def test_components_are_transitive_and_labelled_by_their_smallest_id():
    labels = connected_components(8, np.array([5, 3, 6]), np.array([3, 1, 7]))
    assert labels.tolist() == [0, 1, 2, 1, 4, 1, 6, 6]
    assert group_sizes(labels).tolist() == [1, 3, 1, 3, 1, 3, 2, 2]
    assert connected_components(3, np.array([]), np.array([])).tolist() == [0, 1, 2]


def test_components_agree_with_a_breadth_first_search():
    rng = np.random.default_rng(3)
    count = 2000
    left, right = rng.integers(0, count, 1500), rng.integers(0, count, 1500)
    labels = connected_components(count, left, right)
    neighbours: dict[int, set[int]] = {}
    for a, b in zip(left.tolist(), right.tolist()):
        neighbours.setdefault(a, set()).add(b)
        neighbours.setdefault(b, set()).add(a)
    seen: dict[int, int] = {}
    for start in range(count):
        if start in seen:
            continue
        stack, component = [start], []
        seen[start] = start
        while stack:
            node = stack.pop()
            component.append(node)
            for nxt in neighbours.get(node, ()):
                if nxt not in seen:
                    seen[nxt] = start
                    stack.append(nxt)
        assert set(labels[component].tolist()) == {min(component)}


def test_sizes_parse_and_print():
    assert parse_size("2GB", option="--m") == 2 * GB and parse_size("512MiB", option="--m") == 512 * 2**20
    assert parse_size("1.5g", option="--m") == 1_500_000_000 and parse_size("4096", option="--m") == 4096
    with pytest.raises(CurateError, match="--max-index-memory must be a size"):
        parse_size("lots", option="--max-index-memory")
    assert format_size(1_030_000_000) == "1.03 GB" and format_size(999) == "999 B"
