"""An ordered, bounded map over worker processes.

`multiprocessing.Pool.imap` drains its input iterator as fast as it can, so memory grows
with the dataset. `OrderedPool.map` keeps at most `max_in_flight` tasks queued: the reader
stays only a few batches ahead of the model and memory stays flat. Results come back in
input order, which keeps output rows deterministic across runs.
"""

from __future__ import annotations

import multiprocessing as mp
from collections import deque
from typing import Any, Callable, Iterable, Iterator, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class OrderedPool:
    """Runs `fn` over items in `workers` spawned processes (inline when `workers == 0`)."""

    def __init__(self, workers: int, *, max_in_flight: int | None = None) -> None:
        self.workers = workers
        self.max_in_flight = max_in_flight or max(2, workers * 3)
        self._pool: Any = None

    def __enter__(self) -> "OrderedPool":
        if self.workers > 0:
            # spawn: workers never inherit the parent's torch threads or CUDA context
            self._pool = mp.get_context("spawn").Pool(self.workers)
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
    ) -> Iterator[tuple[T, R]]:
        """Yield `(item, fn(payload(item), *args))` in input order with bounded look-ahead.

        `payload` picks what is shipped to the worker (image bytes, not whole samples).
        """
        if self._pool is None:
            for item in items:
                yield item, fn(payload(item), *args)
            return
        pending: deque = deque()
        for item in items:
            pending.append((item, self._pool.apply_async(fn, (payload(item), *args))))
            if len(pending) >= self.max_in_flight:
                done_item, result = pending.popleft()
                yield done_item, result.get()
        while pending:
            done_item, result = pending.popleft()
            yield done_item, result.get()
