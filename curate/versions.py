"""Library versions recorded in every artefact, so a result can be traced to what made it."""

from __future__ import annotations

from functools import lru_cache
from importlib import metadata

TRACKED = ("curate", "torch", "transformers", "pyarrow", "numpy", "pillow")


def library_versions() -> dict[str, str]:
    """Installed versions of the libraries that shape the vectors and files."""
    return dict(_installed())


@lru_cache(maxsize=1)
def _installed() -> tuple[tuple[str, str], ...]:
    """Read once per process: each look-up parses a package's metadata file (~6 ms apiece)."""
    out = {}
    for name in TRACKED:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "absent"
    return tuple(out.items())
