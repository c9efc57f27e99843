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
    except ImportError as exc:  # a tokenizer's own library (SigLIP's needs sentencepiece)
        raise CurateError(f"Could not load the {what} '{name}' ({_first_line(exc)[:160]}); install the library it names.") from None
    except (OSError, ValueError, EnvironmentError) as exc:
        raise CurateError(
            f"Could not load the {what} '{name}' ({_first_line(exc)[:160]}); pass {option} with a local "
            "model directory or a hub id this machine can reach."
        ) from None


def load_model(name: str, *, what: str, option: str) -> Any:
    """`AutoModel.from_pretrained(name)`: a backbone (ResNet, BERT) or a two-tower checkpoint (CLIP)."""
    from transformers import AutoModel

    return load_pretrained(AutoModel.from_pretrained, name, what=what, option=option)


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__
