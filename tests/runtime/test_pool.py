"""The decode pool: workers start warm, and crops come back through shared memory, whole."""

from __future__ import annotations

import logging
from multiprocessing import shared_memory

import numpy as np
import pytest

from curate.models.pair_facts import warm_decoder
from curate.models.preprocess import ImagePreprocess, decode_batch
from curate.runtime.pool import OrderedPool
from curate.runtime.shared_slots import InSlot, SlotRing


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


def _scenes(count: int, size: int = 96) -> list[bytes]:
    from curate.synthetic.scenes import render_scene

    return [render_scene(i, size=size, image_format="JPEG").image for i in range(count)]


PREP = ImagePreprocess(resize_shortest=64, crop=64, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
SLOT = 4 * 64 * 64 * 3  # a batch of 4 crops


@pytest.fixture
def arrivals(monkeypatch) -> list[type]:
    """What each slotted result brought back in place of its pixels (a marker, or the array)."""
    seen: list[type] = []
    collect = SlotRing.collect

    def spy(self, value, ref):
        seen.append(type(value))
        return collect(self, value, ref)

    monkeypatch.setattr(SlotRing, "collect", spy)
    return seen


def test_pixels_through_shared_memory_equal_the_pixels_decoded_in_place(arrivals):
    batches = [_scenes(4), _scenes(3), _scenes(4)]
    with OrderedPool(1, max_in_flight=2) as pool:
        shared = [decoded for _, decoded in pool.map(decode_batch, batches, args=(PREP,), shared=("pixels", SLOT))]
        assert pool._slots is not None and len(pool._slots._free) == 2  # every slot back
    assert arrivals == [InSlot] * 3  # the pixels came through the slots, not the pipe
    for batch, decoded in zip(batches, shared):
        expected = decode_batch(batch, PREP)
        assert isinstance(decoded.pixels, np.ndarray) and decoded.pixels.shape == expected.pixels.shape
        assert np.array_equal(decoded.pixels, expected.pixels) and decoded.ok == expected.ok


def test_an_array_larger_than_its_slot_comes_back_pickled_and_whole(arrivals):
    batch = _scenes(6)
    with OrderedPool(1) as pool:
        ((_, decoded),) = list(pool.map(decode_batch, [batch], args=(PREP,), shared=("pixels", SLOT)))
    assert arrivals == [np.ndarray]
    assert np.array_equal(decoded.pixels, decode_batch(batch, PREP).pixels)


def test_a_map_left_part_way_or_failed_frees_its_slots_for_the_next():
    batches = [_scenes(4) for _ in range(5)]
    with OrderedPool(1, max_in_flight=3) as pool:
        first = pool.map(decode_batch, batches, args=(PREP,), shared=("pixels", SLOT))
        next(first)
        first.close()  # the consumer stops after one batch, with tasks still in flight
        with pytest.raises(TypeError):  # a task that fails in the worker
            list(pool.map(decode_batch, [None], args=(PREP,), shared=("pixels", SLOT)))
        again = [d for _, d in pool.map(decode_batch, batches, args=(PREP,), shared=("pixels", SLOT))]
        assert len(pool._slots._free) == 3
    assert all(np.array_equal(d.pixels, decode_batch(b, PREP).pixels) for b, d in zip(batches, again))


def test_the_slots_are_gone_when_the_pool_closes():
    with OrderedPool(1, max_in_flight=2) as pool:
        list(pool.map(decode_batch, [_scenes(2)], args=(PREP,), shared=("pixels", SLOT)))
        names = list(pool._slots._blocks)
    assert len(names) == 2
    for name in names:
        with pytest.raises(FileNotFoundError):
            shared_memory.SharedMemory(name=name)


def test_without_room_in_shared_memory_the_crops_come_back_pickled_and_it_says_so(arrivals, monkeypatch, caplog):
    """A container's small /dev/shm would kill a worker with a bus error: no slots are made."""
    from curate.runtime import shared_slots

    monkeypatch.setattr(shared_slots.shutil, "disk_usage", lambda _: shutil_usage(total=64 << 20, free=SLOT))
    monkeypatch.setattr(logging.getLogger("curate"), "handlers", [caplog.handler])  # however logging was set up
    batch = _scenes(4)
    with OrderedPool(1, max_in_flight=2) as pool:  # two slots would not fit in one slot's room
        ((_, decoded),) = list(pool.map(decode_batch, [batch], args=(PREP,), shared=("pixels", SLOT)))
        assert pool._slots is None
    assert np.array_equal(decoded.pixels, decode_batch(batch, PREP).pixels)
    assert arrivals == []  # nothing went through a slot
    assert "shared memory" in caplog.text and "--shm-size" in caplog.text


def shutil_usage(*, total: int, free: int):
    import shutil

    return shutil._ntuple_diskusage(total, total - free, free)
