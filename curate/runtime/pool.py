"""An ordered, bounded map over worker processes.

`multiprocessing.Pool.imap` drains its input iterator as fast as it can, so memory grows
with the dataset. `OrderedPool.map` keeps at most `max_in_flight` tasks queued, and at most
`max_in_flight_bytes` of their payloads (a shard of huge images fills the byte budget long
before the count): the reader stays only a few batches ahead of the model and memory stays
flat. Results come back in input order, which keeps output rows deterministic across runs.
"""

from __future__ import annotations

import multiprocessing as mp
from collections import deque
from typing import Any, Callable, Iterable, Iterator, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class OrderedPool:
    """Runs `fn` over items in `workers` spawned processes (inline when `workers == 0`)."""

    def __init__(self, workers: int, *, max_in_flight: int | None = None, max_in_flight_bytes: int | None = None,
                 warm_up: Callable[[], None] | None = None) -> None:
        """`warm_up` runs once in each worker as it starts (what a first task would otherwise pay
        for, such as loading a model), so a pool started early is ready when the work comes."""
        self.workers = workers
        self.max_in_flight = max_in_flight or max(2, workers * 3)
        self.max_in_flight_bytes = max_in_flight_bytes
        self.warm_up = warm_up
        self._pool: Any = None

    def __enter__(self) -> "OrderedPool":
        if self.workers > 0:
            # spawn: workers never inherit the parent's torch threads or CUDA context
            self._pool = mp.get_context("spawn").Pool(self.workers, initializer=self.warm_up)
        return self

    def __exit__(self, *_: Any) -> None:
        if self._pool is not None:
            self._pool.terminate()
            self._pool.join()
            self._pool = None

    def map(
        self,
        fn: Callable[..., R],
        items: Iterable[T],
        *,
        args: tuple[Any, ...] = (),
        payload: Callable[[T], Any] = lambda item: item,
        size: Callable[[T], int] = lambda item: 0,
    ) -> Iterator[tuple[T, R]]:
        """Yield `(item, fn(payload(item), *args))` in input order with bounded look-ahead.

        `payload` picks what is shipped to the worker (image bytes, not whole samples); `size`
        says how many bytes an item holds, for the `max_in_flight_bytes` budget (one item is
        always let through, however large).
        """
        if self._pool is None:
            for item in items:
                result = fn(payload(item), *args)
                yield item, result
                del item, result  # not held while the next item is read: one batch in memory, not two
            return
        pending: deque = deque()
        in_flight = 0
        for item in items:
            weight = size(item)
            while pending and self._full(len(pending), in_flight + weight):
                done_item, result, done_weight = pending.popleft()
                in_flight -= done_weight
                yield done_item, result.get()
            pending.append((item, self._pool.apply_async(fn, (payload(item), *args)), weight))
            in_flight += weight
        while pending:
            done_item, result, _ = pending.popleft()
            yield done_item, result.get()

    def _full(self, tasks: int, weight: int) -> bool:
        """Whether queueing one more task would pass the count or the byte budget."""
        over_bytes = self.max_in_flight_bytes is not None and weight > self.max_in_flight_bytes
        return tasks >= self.max_in_flight or over_bytes
