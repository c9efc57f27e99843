"""Arrays moved from worker processes to the main process through shared memory, not pipes.

A pickled batch of crops crosses a pipe as four copies (pickled, written, read, unpickled):
about 0.2 ms of the main process's time per 224-px crop, which at the thousands of pairs per
second a GPU takes would use most of a core of the process that also drives the GPU. Instead
the main process keeps a ring of shared-memory slots, one per task in flight; a worker writes
the array its task returns into the slot the task names and sends back only a marker (the
rest of the result, small, still goes by pickle); the main process copies the array out, one
memory copy, and the slot is free for the next task. An array larger than its slot comes back
pickled, as before.

Slots are created and unlinked by the main process. If it is killed, the interpreter's resource
tracker unlinks them when the last process using them exits. Where shared memory is a small
tmpfs (a container's 64 MB `/dev/shm`), writing past its size would kill a worker with a bus
error, so slots are only made when `/dev/shm` has room for all of them (`room_for`).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from multiprocessing import shared_memory
from typing import Any, Callable

import numpy as np

_ATTACHED: dict[str, shared_memory.SharedMemory] = {}  # a worker's open slots, by name
SHARED_MEMORY_DIR = "/dev/shm"  # Linux's POSIX shared memory; other systems have no such folder


def room_for(nbytes: int) -> bool:
    """Whether shared memory can hold `nbytes` more (True where it is not a folder to measure)."""
    try:
        return shutil.disk_usage(SHARED_MEMORY_DIR).free >= nbytes
    except OSError:
        return True


@dataclass(frozen=True)
class SlotRef:
    """A slot as a task names it."""

    name: str
    nbytes: int


@dataclass(frozen=True)
class InSlot:
    """What a worker returns in place of an array it wrote into its task's slot."""

    shape: tuple[int, ...]
    dtype: str


class SlotRing:
    """`count` shared-memory slots of `nbytes` each, handed out and taken back by the main process."""

    def __init__(self, count: int, nbytes: int) -> None:
        self.nbytes = nbytes
        self._blocks: dict[str, shared_memory.SharedMemory] = {}
        try:
            for _ in range(count):
                block = shared_memory.SharedMemory(create=True, size=max(1, nbytes))
                self._blocks[block.name] = block
        except BaseException:
            self.close()
            raise
        self._free = list(self._blocks)

    def take(self) -> SlotRef:
        """A free slot (the caller keeps no more tasks in flight than there are slots)."""
        return SlotRef(self._free.pop(), self.nbytes)

    def collect(self, value: Any, ref: SlotRef) -> Any:
        """`value` as the worker computed it: an `InSlot` marker becomes a copy of the slot's array.
        The slot is free again either way."""
        try:
            if not isinstance(value, InSlot):
                return value
            view = np.ndarray(value.shape, np.dtype(value.dtype), buffer=self._blocks[ref.name].buf)
            copied = view.copy()
            del view  # the block's buffer cannot be closed while a view of it lives
            return copied
        finally:
            self._free.append(ref.name)

    def close(self) -> None:
        """Unlink every slot (workers must be stopped first)."""
        for block in self._blocks.values():
            block.close()
            block.unlink()
        self._blocks, self._free = {}, []


def into_slot(array: np.ndarray, ref: SlotRef) -> np.ndarray | InSlot:
    """In a worker: write `array` into the slot and return its marker, or return the array
    itself when it does not fit."""
    if array.nbytes > ref.nbytes:
        return array
    block = _ATTACHED.get(ref.name)
    if block is None:
        block = _ATTACHED[ref.name] = shared_memory.SharedMemory(name=ref.name)
    view = np.ndarray(array.shape, array.dtype, buffer=block.buf)
    view[...] = array
    del view
    return InSlot(tuple(array.shape), array.dtype.str)


def run_into_slot(fn: Callable[..., Any], field: str, ref: SlotRef, payload: Any, *args: Any) -> Any:
    """In a worker: `fn(payload, *args)`, its array attribute `field` sent through the slot."""
    result = fn(payload, *args)
    setattr(result, field, into_slot(getattr(result, field), ref))
    return result
