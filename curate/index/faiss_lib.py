"""The one door to FAISS: imported lazily, GPU used when the GPU build and a GPU are present.

`faiss-cpu` is a dependency; `faiss-gpu-cu12` comes with the `gpu` extra. Importing here,
not at module top, keeps `curate --help` fast and lets a missing install be one line.
"""

from __future__ import annotations

import logging
from functools import lru_cache
from typing import Any

from curate.errors import CurateError

log = logging.getLogger("curate")
INSTALL_HINT = "pip install faiss-cpu (or `pip install 'curate[gpu]'` for faiss-gpu on CUDA machines)"
GPU_KINDS = frozenset({"flat", "ivf-flat"})  # what index_cpu_to_gpu clones as built here


def import_faiss() -> Any:
    """The faiss module, or one line saying how to install it."""
    try:
        import faiss
    except ImportError:
        raise CurateError(f"FAISS is not installed; {INSTALL_HINT}.") from None
    return faiss


def gpu_count() -> int:
    """GPUs FAISS can use: 0 with the CPU build."""
    faiss = import_faiss()
    return int(faiss.get_num_gpus()) if hasattr(faiss, "get_num_gpus") else 0


def use_gpu(device: str) -> bool:
    """`auto`: GPU when there is one; `cpu`: never; `cuda`: required."""
    if device == "cpu":
        return False
    if device == "auto":
        return gpu_count() > 0
    if device.startswith("cuda"):
        if gpu_count() == 0:
            raise CurateError(f"--device {device} was asked for but FAISS sees no GPU; install curate[gpu] or use --device cpu.")
        return True
    raise CurateError(f"Unknown device '{device}'; known: auto, cpu, cuda.")


@lru_cache(maxsize=1)
def _gpu_resources() -> Any:
    """One StandardGpuResources per process: it owns scratch memory the GPU indexes share."""
    return import_faiss().StandardGpuResources()


def to_gpu(index: Any, kind: str) -> tuple[Any, bool]:
    """(GPU clone, True) for kinds the GPU supports, else (index, False) unchanged."""
    if kind not in GPU_KINDS:
        return index, False
    faiss = import_faiss()
    try:
        return faiss.index_cpu_to_gpu(_gpu_resources(), 0, index), True
    except (RuntimeError, AttributeError) as exc:  # an index type the GPU build cannot clone
        log.warning("keeping the %s index on the CPU (%s)", kind, exc)
        return index, False


def to_cpu(index: Any, on_gpu: bool) -> Any:
    """A CPU copy for writing to disk (GPU indexes cannot be serialised)."""
    return import_faiss().index_gpu_to_cpu(index) if on_gpu else index


def set_search_params(index: Any, params: dict[str, int], *, on_gpu: bool) -> None:
    """Apply nprobe / efSearch / k_factor_rf through FAISS's own parameter space."""
    faiss = import_faiss()
    space = faiss.GpuParameterSpace() if on_gpu else faiss.ParameterSpace()
    for name, value in params.items():
        space.set_index_parameter(index, name, value)
