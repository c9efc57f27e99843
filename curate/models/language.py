"""Which language a caption is in: py3langid, offline, once per pair at embed time.

Filters the field runs ask "is this caption English?" (DataComp's basic filter, LAION's
English subset). py3langid is the maintained fork of langid.py: its model (97 languages,
naive Bayes over byte n-grams) ships inside the wheel, it needs only numpy, never touches
the network, and is deterministic; it runs in the decode workers beside image decoding
(about 0.2 ms a caption on one core). The confidence is its normalised probability of the
language it names. Very short captions ("dog") get a guess with a low confidence; the
recipes that care about language also require a few words.

This module imports no torch: decode workers load it.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Sequence

from curate.errors import CurateError


@lru_cache(maxsize=1)
def identifier() -> Any:
    """The identifier with normalised probabilities, loaded once per process (about a second)."""
    try:
        from py3langid.langid import MODEL_FILE, LanguageIdentifier
    except ImportError:
        raise CurateError("Caption languages are identified with py3langid: pip install py3langid") from None
    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


def identify(texts: Sequence[str]) -> list[tuple[str, float]]:
    """(ISO 639-1 code, probability) of each caption's most likely language; line breaks read as spaces."""
    model = identifier()
    found = []
    for text in texts:
        language, probability = model.classify(" ".join(text.split()))
        found.append((str(language), float(probability)))
    return found
