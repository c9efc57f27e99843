"""Device choice and the per-device settings that make the encoders fast.

CUDA gets autocast (bf16 where supported, else fp16), channels_last and pinned memory;
the CPU path runs in float32 and is what CI exercises.
"""

from __future__ import annotations

from contextlib import nullcontext
from typing import ContextManager

import torch

from curate.errors import CurateError

DEVICE_CHOICES = ("auto", "cpu", "cuda")


def resolve_device(name: str) -> torch.device:
    """Map `auto|cpu|cuda[:N]` to a device, refusing CUDA where there is none."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise CurateError("--device cuda was asked for but no CUDA GPU is visible; use --device cpu or auto.")
        return torch.device(name)
    if name == "cpu":
        return torch.device("cpu")
    raise CurateError(f"Unknown device '{name}'; known: {', '.join(DEVICE_CHOICES)}.")


def autocast_dtype(device: torch.device) -> torch.dtype | None:
    """bf16 on GPUs that support it, fp16 on older ones, none (float32) on CPU."""
    if device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def autocast(device: torch.device) -> ContextManager:
    """Mixed precision on CUDA, a no-op elsewhere."""
    dtype = autocast_dtype(device)
    if dtype is None:
        return nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)
