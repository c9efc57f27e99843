"""The checks an option can carry, each one sentence that names the option and the value.

A check is a function of (option, value) that raises `CurateError` or returns. They are
declared on config fields (`option(..., check=at_least(1))`) and run by `check_fields`,
before any work starts; checks that need two fields at once live in the config's own
`validate`.
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path
from typing import Any, Iterable

from curate.errors import CurateError
from curate.schemas.config.options import Check
from curate.units import parse_size

# a scheme of two or more letters, then ':/' (a pathlib-folded URL keeps only one slash)
URL_PATTERN = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]+):/")


def looks_like_url(value: object) -> bool:
    """Whether a value as typed names a URL rather than a local path (`C:/` is a path)."""
    return bool(URL_PATTERN.match(str(value)))


def unfold(text: str) -> str:
    """Undo pathlib's folding of `//`: `s3:/b/k` -> `s3://b/k`, `file:/tmp/x` -> `file:///tmp/x`."""
    match = URL_PATTERN.match(text)
    if match is None or text[match.end():].startswith("/"):
        return text
    rest = text[match.end():]
    return f"{match.group(1)}:///{rest}" if match.group(1) == "file" else f"{match.group(1)}://{rest}"


def finite(option: str, value: Any) -> None:
    """NaN and infinity pass every comparison check silently; refuse them first."""
    if isinstance(value, float) and not math.isfinite(value):
        raise CurateError(f"{option} must be a finite number (got {value}).")


def at_least(least: int | float, *, note: str = "") -> Check:
    """`--batch-size must be at least 1 (got 0).`; None passes (an option left unset)."""
    def check(option: str, value: Any) -> None:
        if value is None:
            return
        finite(option, value)
        if value < least:
            raise CurateError(f"{option} must be at least {least}{note} (got {value}).")
    return check


def positive(option: str, value: Any) -> None:
    if value is None:
        return
    finite(option, value)
    if not value > 0:
        raise CurateError(f"{option} must be positive (got {value}).")


def within(low: float, high: float, *, low_open: bool = False, high_open: bool = False, note: str = "") -> Check:
    """`--min-sim must lie in [-1, 1], cosine similarity's range (got 1.5).`; None passes."""
    shown = f"{'(' if low_open else '['}{_num(low)}, {_num(high)}{')' if high_open else ']'}"

    def check(option: str, value: Any) -> None:
        if value is None:
            return
        finite(option, value)
        above = value > low if low_open else value >= low
        below = value < high if high_open else value <= high
        if not (above and below):
            raise CurateError(f"{option} must lie in {shown}{note} (got {value}).")
    return check


def each(inner: Check) -> Check:
    """Apply `inner` to every value of a repeatable option."""
    def check(option: str, values: Any) -> None:
        for value in values or ():
            inner(option, value)
    return check


def one_of(names: Iterable[str]) -> Check:
    """`Unknown --loss 'x'; known: contrastive, cosine.`; None passes."""
    known = tuple(names)

    def check(option: str, value: Any) -> None:
        if value is not None and value not in known:
            raise CurateError(f"Unknown {option} '{value}'; known: {', '.join(known)}.")
    return check


def size_at_least(least: int) -> Check:
    """A byte size as typed (`512MB`, `2GiB`), parsed and at least `least` bytes; None passes."""
    def check(option: str, value: Any) -> None:
        if value is not None and parse_size(str(value), option=option) < least:
            raise CurateError(f"{option} must be at least {least} bytes (got {value}).")
    return check
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def env_assignment(option: str, value: Any) -> None:
    """`NAME=VALUE`, or a bare `NAME` this machine has set (its value is passed on, so a secret
    need not be typed on the command line, where `ps` would show it)."""
    if value is None:
        return
    name, given, _ = str(value).partition("=")
    if not ENV_NAME.match(name):
        raise CurateError(f"{option} {value!r} is not NAME=VALUE or NAME (letters, digits and _).")
    if not given and name not in os.environ:
        raise CurateError(f"{option} {name}: {name} is not set on this machine; set it here or give {name}=VALUE.")


def not_blank(option: str, value: Any) -> None:
    if value is not None and not str(value).strip():
        raise CurateError(f"{option} is empty.")


def local_only(what: str) -> Check:
    """One line for a URL given to a command that reads and writes local folders only."""
    def check(option: str, value: Any) -> None:
        for item in value if isinstance(value, (tuple, list)) else (value,):
            if item is not None and looks_like_url(item):
                raise CurateError(
                    f"{what} {unfold(str(item))} is a URL; only `curate embed` and `curate score` read and write "
                    "object stores. Copy the run here first (e.g. `aws s3 sync`, `gcloud storage rsync`) or mount "
                    "the bucket, and pass the local folder."
                )
    return check


def given(message: str) -> Check:
    """For repeatable arguments: at least one value, else `message` (what to give, with an example)."""
    def check(option: str, value: Any) -> None:
        if not value:
            raise CurateError(message)
    return check


def existing(what: str) -> Check:
    """`Run directory runs/r9 does not exist.`: for inputs that must be there before work starts."""
    def check(option: str, value: Any) -> None:
        if value is not None and not looks_like_url(value) and not Path(value).exists():
            raise CurateError(f"{what} {value} does not exist.")
    return check


def all_of(*checks: Check) -> Check:
    """Several checks on one option, in order."""
    def check(option: str, value: Any) -> None:
        for inner in checks:
            inner(option, value)
    return check


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)
