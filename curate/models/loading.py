"""Loading pretrained weights through `from_pretrained`, with one clear sentence on failure.

A hub id and a local directory both work, and the Hugging Face cache and offline mode behave
as users know them. When the weights cannot be had (offline, typo, private repo, a damaged
file), the user gets a `CurateError` naming the option to pass, or the broken file, instead
of a traceback.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any, Callable, TypeVar

from curate.errors import CurateError
from curate.models.model_files import check_model_dir

T = TypeVar("T")
log = logging.getLogger("curate")
HUB_ID = re.compile(r"[A-Za-z0-9][\w.\-]*(?:/[A-Za-z0-9][\w.\-]*)?")  # `name` or `owner/name`
LOCAL, HUB = "local", "hub"


def model_source(name: str, *, option: str, warn: bool = True) -> str:
    """`local` when `name` is a folder here, `hub` when it can only be a hub id.

    `from_pretrained` tries a folder first, so a folder that happens to be named like a hub
    id (`./gpt2` when `gpt2` is given) wins silently: that is said in a warning, and a name
    that looks like a path (`./x`, `/x`, `a/b/c`) but is no folder is refused rather than
    sent to the hub.
    """
    hub_shaped = HUB_ID.fullmatch(name) is not None
    if Path(name).expanduser().is_dir():
        if hub_shaped and warn:
            log.warning("%s %s: using the local folder %s, not the hub model of that name", option, name,
                        Path(name).expanduser().resolve())
        return LOCAL
    if not hub_shaped:
        raise CurateError(f"{option} {name}: no such folder, and not a hub id (owner/name).")
    return HUB


def model_ref(name: str, *, option: str, warn: bool = True) -> tuple[str, str]:
    """(where the model came from: `local` or `hub`, what a card records: an absolute folder or the hub id)."""
    source = model_source(name, option=option, warn=warn)
    return source, str(Path(name).expanduser().resolve()) if source == LOCAL else name


def load_pretrained(
    loader: Callable[..., T], name: str, *, what: str, option: str, hint: str | None = None, **kwargs: Any
) -> T:
    """Call `loader(name, **kwargs)`, turning any loading failure into a `CurateError`.

    A local folder's JSON and safetensors files are looked over first, so a truncated file is
    named. `hint` replaces the default advice ("pass OPTION with ...") where the model comes
    from a saved checkpoint rather than from an option the user typed.
    """
    advice = hint or f"pass {option} with a local model directory or a hub id this machine can reach"
    if Path(name).is_dir():
        damaged = f"the file is damaged or was copied only in part; pass another {option}"
        check_model_dir(Path(name), hint=hint or damaged)
    try:
        return loader(name, **kwargs)
    except Exception as exc:  # noqa: BLE001 - whatever a loader raises on a model folder is the user's to fix
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CurateError(f"Could not load the {what} '{name}' ({first[:160]}); {advice}.") from None
