"""Prompt-side text metrics: best-of-references METEOR, distinct-n, subject faithfulness.

METEOR itself is the shared exact-match implementation in `curate.text_metrics` (the
captioner uses the same one): NLTK's needs WordNet, which cannot be downloaded here, so only
identical words align, with NLTK's default parameters. Words for distinct-n and
faithfulness are lower-cased alphanumeric runs, punctuation dropped.
"""

from __future__ import annotations

import re
from typing import Iterable, Sequence

from curate.text_metrics import meteor

TOKEN = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")

__all__ = ["best_meteor", "contains_phrase", "distinct_n", "faithfulness", "meteor", "words"]


def words(text: str) -> list[str]:
    """Lower-cased word tokens, punctuation dropped."""
    return TOKEN.findall(text.lower())


def best_meteor(hypothesis: str, references: Iterable[str]) -> float:
    """Against several references, the best match counts (as NLTK does)."""
    return max((meteor(hypothesis, r) for r in references), default=0.0)


def distinct_n(texts: Iterable[str], n: int) -> float:
    """Unique n-grams over all n-grams across the generations: 1.0 means no repetition at all."""
    total, unique = 0, set()
    for text in texts:
        tokens = words(text)
        grams = [tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1)]
        total += len(grams)
        unique.update(grams)
    return len(unique) / total if total else 0.0


def contains_phrase(text: str, phrase: str) -> bool:
    """Whole-word, case-insensitive containment of a (multi-word) phrase."""
    target = words(phrase)
    tokens = words(text)
    if not target:
        return False
    return any(tokens[i:i + len(target)] == target for i in range(len(tokens) - len(target) + 1))


def faithfulness(texts: Sequence[str], subjects: Sequence[str]) -> float:
    """Share of generations that contain the subject they were asked about."""
    if not texts:
        return 0.0
    return sum(contains_phrase(t, s) for t, s in zip(texts, subjects)) / len(texts)
