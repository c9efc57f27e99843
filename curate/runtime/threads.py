"""How many threads the model gets: the cores this process may use.

The cores are those of the process's CPU affinity, narrowed by `OMP_NUM_THREADS` when set: a
Ray worker gets it set to the CPUs it reserved, and a user may set it to share a machine.
Decode processes are not subtracted. Measured on an idle 2-core machine with one decode
process (`benchmarks/embed_throughput.py`, `benchmarks/cpu_threads.py`): a ViT-B/32 CLIP ran
end to end at 10.4 pairs/s with both cores against 5.9 with the one core decoding leaves,
because decoding keeps its core busy only part of the time; tiny, decode-bound models ran
the same either way (36.1 against 37.7 pairs/s, within the rounds' spread). Where other jobs
share the cores, `OMP_NUM_THREADS` narrows the model to its share.
"""

from __future__ import annotations

import os


def usable_cores() -> int:
    """Cores this process may run on (affinity, then `OMP_NUM_THREADS` if set and smaller)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    try:
        limit = int(os.environ.get("OMP_NUM_THREADS", ""))
    except ValueError:
        return cores
    return max(1, min(cores, limit)) if limit > 0 else cores


def give_model_the_usable_cores() -> int:
    """Set torch's intra-op threads to `usable_cores()`; returns it."""
    import torch

    threads = usable_cores()
    torch.set_num_threads(threads)
    return threads
