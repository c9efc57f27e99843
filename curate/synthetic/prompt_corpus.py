"""A synthetic text-to-image prompt corpus: subject, setting, style modifiers, artists.

Every prompt is built the way real ones are (subject first, then comma-separated modifiers
and an artist list), so cleaning, plain-version derivation, subject extraction and the
prompt models can be checked for real without downloading a corpus. Pure function of
`(seed, count)`.
"""

from __future__ import annotations

import random

SUBJECTS = ("a red fox", "a lighthouse", "an old castle", "a sailing ship", "a small robot", "a black cat",
            "a green dragon", "a mountain village")
SETTINGS = ("in a snowy forest", "on a cliff", "at sunset", "under the stars", "in the rain", "near a river")
STYLES = ("highly detailed", "digital art", "oil painting", "trending on artstation", "8k", "concept art",
          "sharp focus", "cinematic lighting", "soft colors", "dramatic sky")
ARTISTS = ("greg rutkowski", "alphonse mucha", "james gurney", "thomas kinkade")


def synthetic_prompt(rng: random.Random) -> str:
    """One detailed prompt: `subject setting, style, style[, style], by artist[ and artist]`."""
    subject, setting = rng.choice(SUBJECTS), rng.choice(SETTINGS)
    styles = rng.sample(STYLES, rng.randint(2, 3))
    artists = " and ".join(rng.sample(ARTISTS, rng.randint(1, 2)))
    return f"{subject} {setting}, {', '.join(styles)}, by {artists}"


def synthetic_prompts(count: int, *, seed: int = 0) -> list[str]:
    """`count` prompts (duplicates possible, as in real corpora)."""
    rng = random.Random(seed)
    return [synthetic_prompt(rng) for _ in range(count)]


def corpus_words() -> list[str]:
    """Every word the corpus can use, for tiny word-level tokenizers."""
    words = {"by", "and", ","}
    for group in (SUBJECTS, SETTINGS, STYLES, ARTISTS):
        for phrase in group:
            words.update(phrase.split())
    return sorted(words)
