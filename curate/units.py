"""Human byte sizes (`2GB`, `512MiB`, `1.5G`) parsed for options and printed for logs."""

from __future__ import annotations

import math
import re

from curate.errors import CurateError

_UNITS = {
    "": 1, "b": 1,
    "k": 1000, "kb": 1000, "kib": 1024,
    "m": 1000**2, "mb": 1000**2, "mib": 1024**2,
    "g": 1000**3, "gb": 1000**3, "gib": 1024**3,
    "t": 1000**4, "tb": 1000**4, "tib": 1024**4,
}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$")
LARGEST_SIZE = 1000**5  # 1 PB: far above any budget, far below where floats lose whole bytes


def parse_size(text: str, *, option: str) -> int:
    """`2GB` -> 2_000_000_000; `option` names the flag in the one-line error."""
    match = _SIZE.match(text)
    unit = match.group(2).lower() if match else None
    if match is None or unit not in _UNITS:
        raise CurateError(f"{option} must be a size such as 512MB, 2GB or 1.5GiB (got '{_shown(text)}').")
    size = float(match.group(1)) * _UNITS[unit]
    if not math.isfinite(size) or size > LARGEST_SIZE:
        raise CurateError(f"{option} must be at most 1PB (got '{_shown(text)}').")
    return int(size)


def _shown(text: str, limit: int = 40) -> str:
    """The value as typed, cut if it is long (a pasted 400-digit number stays one short line)."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def format_size(count: float) -> str:
    """1_234_567_890 -> `1.23 GB` (decimal units, as `parse_size` reads them)."""
    for unit in ("B", "KB", "MB", "GB"):
        if abs(count) < 1000:
            return f"{count:.3g} {unit}" if unit != "B" else f"{int(count)} B"
        count /= 1000
    return f"{count:.3g} TB"
