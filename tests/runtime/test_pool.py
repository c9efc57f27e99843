"""The decode pool's workers start warm: what a first batch would pay for is loaded as they start."""

from __future__ import annotations

from curate.models.pair_facts import warm_decoder
from curate.runtime.pool import OrderedPool


def _language_model_loaded(_: object) -> bool:
    """Run in a worker: whether this process has loaded the caption language model yet."""
    from curate.models.language import identifier

    return identifier.cache_info().currsize == 1


def test_a_pool_warms_each_worker_before_its_first_task():
    with OrderedPool(1, warm_up=warm_decoder) as pool:
        assert [loaded for _, loaded in pool.map(_language_model_loaded, [None, None])] == [True, True]


def test_without_a_warm_up_the_first_task_finds_nothing_loaded():
    with OrderedPool(1) as pool:
        assert [loaded for _, loaded in pool.map(_language_model_loaded, [None])] == [False]
