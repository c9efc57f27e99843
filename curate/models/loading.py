"""Loading pretrained weights through `from_pretrained`, with one clear sentence on failure.

A hub id and a local directory both work, and the Hugging Face cache and offline mode behave
as users know them. When the weights cannot be had (offline, typo, private repo), the user
gets a `CurateError` naming the option to pass instead of a traceback.
"""

from __future__ import annotations

from typing import Any, Callable, TypeVar

from curate.errors import CurateError

T = TypeVar("T")


def load_pretrained(loader: Callable[..., T], name: str, *, what: str, option: str, **kwargs: Any) -> T:
    """Call `loader(name, **kwargs)`, turning any loading failure into a `CurateError`."""
    try:
        return loader(name, **kwargs)
    except (OSError, ValueError, EnvironmentError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CurateError(
            f"Could not load the {what} '{name}' ({first[:160]}); pass {option} with a local "
            "model directory or a hub id this machine can reach."
        ) from None
