"""An ordered, bounded map over worker processes.

`multiprocessing.Pool.imap` drains its input iterator as fast as it can, so memory grows
with the dataset. `OrderedPool.map` keeps at most `max_in_flight` tasks queued, and at most
`max_in_flight_bytes` of their payloads (a shard of huge images fills the byte budget long
before the count): the reader stays only a few batches ahead of the model and memory stays
flat. Results come back in input order, which keeps output rows deterministic across runs.

`map` can move one array of each result (the attribute it is told to share, such as a
batch's pixels) through shared-memory slots instead of the result pipe
(`runtime/shared_slots.py`): one slot per task in flight, made on the first such map, so the
main process pays one memory copy per result instead of an unpickling.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator, TypeVar

from curate.runtime.shared_slots import SHARED_MEMORY_DIR, SlotRef, SlotRing, room_for, run_into_slot

log = logging.getLogger("curate")

SETTLE_SECONDS = 600  # a task of a map left part way is waited for at most this long
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
        self._slots: SlotRing | None = None
        self._no_room_told = False

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
        if self._slots is not None:  # after the workers: none is writing into a slot any more
            self._slots.close()
            self._slots = None

    def map(
        self,
        fn: Callable[..., R],
        items: Iterable[T],
        *,
        args: tuple[Any, ...] = (),
        payload: Callable[[T], Any] = lambda item: item,
        size: Callable[[T], int] = lambda item: 0,
        shared: tuple[str, int] | None = None,
    ) -> Iterator[tuple[T, R]]:
        """Yield `(item, fn(payload(item), *args))` in input order with bounded look-ahead.

        `payload` picks what is shipped to the worker (image bytes, not whole samples); `size`
        says how many bytes an item holds, for the `max_in_flight_bytes` budget (one item is
        always let through, however large); `shared` is `(attribute, bytes)`: the array attribute
        of the results that comes back through shared memory, and how large it can be (a larger
        one comes back pickled).
        """
        if self._pool is None:
            for item in items:
                result = fn(payload(item), *args)
                yield item, result
                del item, result  # not held while the next item is read: one batch in memory, not two
            return
        shared = self._share(shared)
        pending: deque = deque()
        in_flight = 0
        try:
            for item in items:
                weight = size(item)
                while pending and self._full(len(pending), in_flight + weight):
                    done_item, result, done_weight = pending.popleft()
                    in_flight -= done_weight
                    yield done_item, result.get()
                pending.append((item, self._submit(fn, payload(item), args, shared), weight))
                in_flight += weight
            while pending:
                done_item, result, _ = pending.popleft()
                yield done_item, result.get()
        finally:
            self._settle(pending)

    def _submit(self, fn: Callable[..., R], payload: Any, args: tuple[Any, ...],
                shared: tuple[str, int] | None) -> "_Result":
        """Start one task, in a shared-memory slot of its own when its array is to be shared."""
        if self._slots is None or shared is None:
            return _Result(self._pool.apply_async(fn, (payload, *args)))
        slot = _Slot(self._slots, self._slots.take(), shared[0])
        return _Result(self._pool.apply_async(run_into_slot, (fn, slot.attribute, slot.ref, payload, *args)), slot)

    def _share(self, shared: tuple[str, int] | None) -> tuple[str, int] | None:
        """`shared` once the slots exist (made on first use); None, results pickled, where
        shared memory has no room for them."""
        if shared is None or self._slots is not None:
            return shared
        needed = self.max_in_flight * shared[1]
        if not room_for(needed):
            if not self._no_room_told:
                log.warning("shared memory (%s) has no room for %d MB of decoded batches: they come back pickled, "
                            "which costs the main process more; give the container a larger /dev/shm "
                            "(docker run --shm-size)", SHARED_MEMORY_DIR, needed // 2**20)
                self._no_room_told = True
            return None
        self._slots = SlotRing(self.max_in_flight, shared[1])
        return shared

    def _settle(self, pending: deque) -> None:
        """Wait for the tasks of a map left part way (its consumer stopped or failed), so the slots
        they write into are free before the pool's next map hands them out again. A pool already
        stopped has no task running, and its slots are gone with it."""
        for _, result, _ in pending:
            if self._pool is not None and result.slot is not None:
                try:
                    result.get(timeout=SETTLE_SECONDS)
                except Exception:  # the consumer's own failure is what propagates
                    pass

    def _full(self, tasks: int, weight: int) -> bool:
        """Whether queueing one more task would pass the count or the byte budget."""
        over_bytes = self.max_in_flight_bytes is not None and weight > self.max_in_flight_bytes
        return tasks >= self.max_in_flight or over_bytes


@dataclass(frozen=True)
class _Slot:
    """Where a task's shared array waits: the ring, the slot, the result's attribute."""

    ring: SlotRing
    ref: SlotRef
    attribute: str


class _Result:
    """A task's result; one whose array was left in a slot gets a copy of it, and frees the slot."""

    def __init__(self, pending: Any, slot: _Slot | None = None) -> None:
        self.pending, self.slot = pending, slot

    def get(self, timeout: float | None = None) -> Any:
        if self.slot is None:
            return self.pending.get(timeout)
        ring, ref, attribute = self.slot.ring, self.slot.ref, self.slot.attribute
        try:
            result = self.pending.get(timeout)
        except mp.TimeoutError:  # still running: its slot stays taken
            raise
        except BaseException:
            ring.collect(None, ref)  # the slot is free again: the task failed
            raise
        setattr(result, attribute, ring.collect(getattr(result, attribute), ref))
        return result
