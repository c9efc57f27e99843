"""Deterministic train/validation/test assignment by a hash of the prompt text.

Hashing the text (not the row number) keeps a prompt in the same split whatever order or
mix of inputs it arrives in, so a rerun or a grown corpus never leaks test prompts into
training. Case-insensitive, like deduplication.
"""

from __future__ import annotations

import hashlib

SPLITS = ("train", "validation", "test")


def unit_interval(text: str, *, salt: str = "") -> float:
    """A stable pseudo-random number in [0, 1) derived from the text alone."""
    digest = hashlib.blake2b(f"{salt}\x00{text.casefold()}".encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def split_of(text: str, *, validation: float, test: float, salt: str = "") -> str:
    """`train`, `validation` or `test` for this prompt, with the given fractions."""
    u = unit_interval(text, salt=salt)
    if u < test:
        return "test"
    if u < test + validation:
        return "validation"
    return "train"
