"""Cleaning prompt text: normalise, tag, derive plain versions (the blocklist is `blocklist.py`).

Each rule is a small pure function so `prepare` can count what every rule removed and the
tests can pin each rule down on its own. Nothing here reads or writes files.
"""

from __future__ import annotations

import re
import unicodedata

WHITESPACE = re.compile(r"\s+")
# Style modifiers that say how a picture looks, not what is in it. Matched as whole words
# anywhere in the subject clause; the list is short on purpose: what it misses stays in the
# plain prompt, which costs the upsampler a little, while a wrong cut would lose the subject.
STYLE_PHRASES = (
    "trending on artstation", "trending on cgsociety", "featured on artstation", "artstation",
    "highly detailed", "ultra detailed", "hyper detailed", "intricate details", "intricate",
    "very detailed", "detailed", "sharp focus", "octane render", "unreal engine", "cinematic lighting",
    "digital painting", "digital art", "concept art", "photorealistic", "hyperrealistic",
    "masterpiece", "award winning", "best quality", "volumetric lighting", "studio lighting",
    "8k", "4k", "hd", "uhd", "hdr",
)
STYLE_PATTERN = re.compile(r"\b(?:" + "|".join(re.escape(p) for p in STYLE_PHRASES) + r")\b", re.IGNORECASE)
# "by greg rutkowski and alphonse mucha" up to the next comma: an artist list.
ARTIST_PATTERN = re.compile(r"\b(?:in the style of|by)\s+[^,]*", re.IGNORECASE)
# Prompt-weight syntax of diffusion front-ends: "(red fox:1.3)", "[castle]", "{dog}".
WEIGHT_PATTERN = re.compile(r"[\(\[\{]([^\)\]\}:]*)(?::[\d.]+)?[\)\]\}]")
DANGLING = re.compile(r"(?:^|\s)(?:and|with|of|in|on|at|by|,)\s*$", re.IGNORECASE)


def normalize(text: str | None) -> str:
    """Unicode NFC, whitespace collapsed to single spaces, ends stripped; None becomes ''."""
    if text is None:
        return ""
    return WHITESPACE.sub(" ", unicodedata.normalize("NFC", text)).strip()


def dedup_key(text: str) -> str:
    """Two prompts that differ only in case are the same prompt for training purposes."""
    return text.casefold()


def add_tags(text: str, *, start: str, end: str) -> str:
    """Wrap a prompt so a causal LM learns where whole prompts begin and end."""
    return f"{start} {text} {end}"


def strip_tags(text: str, *, start: str, end: str) -> str:
    """Cut at the first end tag and remove start tags: what users want to read."""
    head = text.split(end, 1)[0]
    return normalize(head.replace(start, " "))


def plain_version(text: str) -> str:
    """A basic prompt from a detailed one: the subject clause without style or artists.

    The subject is the text before the first comma (prompts put it first); within it, prompt
    weights are unwrapped and artist lists ("by X and Y") and known style phrases removed.
    Falls back to the first clause untouched when stripping would leave nothing.
    """
    first = normalize(text.split(",", 1)[0])
    plain = WEIGHT_PATTERN.sub(r"\1", first)
    plain = ARTIST_PATTERN.sub(" ", plain)
    plain = STYLE_PATTERN.sub(" ", plain)
    plain = normalize(plain)
    while DANGLING.search(plain):
        plain = normalize(DANGLING.sub("", plain))
    return plain or first
