"""How many threads the model gets: the cores this process may use, less its decode processes.

torch starts one intra-op thread per core. Beside `--workers` decode processes that keep
their cores busy, that oversubscribes the CPU: threads of one matrix product wait on each
other while a decode process holds their core (`benchmarks/cpu_threads.py` measures it).
So a worker gives the model the cores its decode processes leave, at least one. The cores
are those of the process's CPU affinity, narrowed by `OMP_NUM_THREADS` when set: a Ray
worker gets it set to the CPUs it reserved, and a user may set it to share a machine.
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


def model_threads(decode_workers: int, *, cores: int) -> int:
    """The cores left after one per decode process; the model always gets one."""
    return max(1, cores - decode_workers)


def give_model_the_cores_left(decode_workers: int) -> int:
    """Set torch's intra-op threads to the cores `decode_workers` processes leave; returns it."""
    import torch

    threads = model_threads(decode_workers, cores=usable_cores())
    torch.set_num_threads(threads)
    return threads
