"""Reading the files of a saved model, with one sentence naming the file when one is damaged.

A checkpoint copied half-way, a disk that filled up mid-save, or a file edited by hand makes
`safetensors`, `json` or `torch.load` raise their own exceptions (a `SafetensorError` is not
an `OSError`), which would surface as tracebacks. These readers turn every such failure into a
`CurateError` that names the file and says what to do, and `check_model_dir` looks over a
local model folder before `from_pretrained` reads it, so the message names the broken file
rather than the folder.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from curate.errors import CurateError

DAMAGED_HINT = "the file is damaged or was copied only in part; copy or save the model again"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:160]


def damaged(path: Path, exc: BaseException, *, hint: str = DAMAGED_HINT) -> CurateError:
    """The one-line error for a file that exists but cannot be read."""
    return CurateError(f"Could not read {path} ({_first_line(exc)}): {hint}.")


def read_json(path: Path, *, hint: str = DAMAGED_HINT) -> Any:
    """A JSON file's value; a missing, truncated or malformed file is one `CurateError` naming it."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise damaged(Path(path), exc, hint=hint) from None


def load_safetensors(path: Path, *, hint: str = DAMAGED_HINT) -> dict[str, Any]:
    """All tensors of a safetensors file (on CPU)."""
    from safetensors.torch import load_file

    try:
        return load_file(str(path))
    except Exception as exc:  # noqa: BLE001 - SafetensorError derives from Exception only
        raise damaged(Path(path), exc, hint=hint) from None


def torch_load(path: Path, *, hint: str = DAMAGED_HINT) -> Any:
    """A file written by `torch.save` (optimiser and RNG state: our own files, so not weights-only)."""
    import pickle

    import torch

    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except (OSError, EOFError, RuntimeError, ValueError, pickle.UnpicklingError) as exc:
        raise damaged(Path(path), exc, hint=hint) from None


def check_safetensors(path: Path, *, hint: str = DAMAGED_HINT) -> None:
    """Open the header: a truncated file fails here ("file not fully covered") without reading the tensors."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            handle.keys()
    except Exception as exc:  # noqa: BLE001 - SafetensorError derives from Exception only
        raise damaged(Path(path), exc, hint=hint) from None


def check_model_dir(folder: Path, *, hint: str = DAMAGED_HINT) -> None:
    """Every JSON and safetensors file directly in `folder` can be read (headers only: cheap)."""
    for path in sorted(Path(folder).iterdir()):
        if path.suffix == ".json" and path.is_file():
            read_json(path, hint=hint)
        elif path.suffix == ".safetensors" and path.is_file():
            check_safetensors(path, hint=hint)
