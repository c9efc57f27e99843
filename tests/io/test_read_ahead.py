"""`read_ahead` hands over the batches in order, raises the reader's error where it broke, and
stops its thread when the consumer leaves early."""

from __future__ import annotations

import threading

import pyarrow as pa
import pytest

from curate.io.embeddings import read_ahead


def batches(count: int, *, fail_at: int | None = None, closed: list | None = None):
    try:
        for i in range(count):
            if i == fail_at:
                raise OSError("the disk went away")
            yield pa.record_batch({"i": [i]})
    finally:
        if closed is not None:
            closed.append(True)


def test_every_batch_in_order():
    assert [b.column(0)[0].as_py() for b in read_ahead(batches(7), depth=2)] == list(range(7))


def test_the_readers_error_comes_after_the_batches_before_it():
    seen = []
    with pytest.raises(OSError, match="disk went away"):
        for batch in read_ahead(batches(5, fail_at=3)):
            seen.append(batch.column(0)[0].as_py())
    assert seen == [0, 1, 2]


def test_leaving_early_stops_the_thread_and_closes_the_reader():
    closed: list = []
    before = threading.active_count()
    stream = read_ahead(batches(100, closed=closed), depth=1)
    next(stream)
    stream.close()
    assert closed == [True] and threading.active_count() == before
