"""Library versions recorded in every artefact, so a result can be traced to what made it."""

from __future__ import annotations

from importlib import metadata

TRACKED = ("curate", "torch", "transformers", "pyarrow", "numpy", "pillow")


def library_versions() -> dict[str, str]:
    """Installed versions of the libraries that shape the vectors and files."""
    out = {}
    for name in TRACKED:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "absent"
    return out
