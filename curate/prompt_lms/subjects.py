"""Subjects for evaluating the concept model: noun phrases scored by frequency, ambiguity, length.

A heuristic chunker with no part-of-speech tagger (none can be downloaded here, and prompts
are not sentences anyway): a prompt is cut at commas and at function words (prepositions,
conjunctions, common verbs), at style phrases and at artist lists ("by X and Y"); what remains
between cuts, with leading determiners dropped, is a candidate noun phrase of 1-4 words.
Candidates come from each prompt's subject clause (before the first comma). Each is scored by

- frequency: how many held-out prompts contain it as a chunk (log-scaled), so evaluation
  subjects are ones the data actually talks about;
- ambiguity: the share of prompts mentioning its words that use them inside a *different*
  chunk ("fox" inside "red fox", "arctic fox"): a phrase that is mostly part of others is
  underspecified as a subject;
- length: two- and three-word phrases are preferred to single words (too vague) and to
  long ones (too specific to generalise).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass
from typing import Iterable

from curate.prompt_lms.clean import ARTIST_PATTERN, STYLE_PATTERN, normalize

FUNCTION_WORDS = frozenset(
    """about above across after against along among around as at before behind below beneath beside
    between beyond but by during for from in inside into like near of off on onto or out outside over
    through to toward towards under upon via with within without and while is are was were be being
    been has have had very trending featuring made wearing holding standing sitting looking""".split()
)
DETERMINERS = frozenset("a an the this that these those some his her their its my our your".split())
WORD = re.compile(r"[a-z0-9][a-z0-9'\-]*")
LENGTH_WEIGHT = {1: 0.5, 2: 1.0, 3: 1.0, 4: 0.7}


@dataclass(frozen=True)
class Subject:
    """One candidate subject and the figures behind its score."""

    phrase: str
    frequency: int
    ambiguity: float
    score: float


def chunks(prompt: str, *, subject_clause: bool = False) -> list[str]:
    """Candidate noun phrases of one prompt, in order of appearance, without duplicates.

    `subject_clause` keeps only the text before the first comma, where prompts name their
    subject ("soft colors" later in the prompt is a modifier, not a subject).
    """
    found: list[str] = []
    text = normalize(prompt).lower()
    text = text.split(",", 1)[0] if subject_clause else text
    for clause in ARTIST_PATTERN.sub(",", STYLE_PATTERN.sub(",", text)).split(","):
        current: list[str] = []
        for word in WORD.findall(clause) + ["of"]:  # a sentinel function word closes the clause
            if word not in FUNCTION_WORDS:
                current.append(word)
                continue
            phrase = _trim(current)
            if phrase and phrase not in found:
                found.append(phrase)
            current = []
    return found


def _trim(words: list[str]) -> str:
    while words and words[0] in DETERMINERS:
        words = words[1:]
    return " ".join(words) if 1 <= len(words) <= 4 and not words[-1].isdigit() else ""


def score_subjects(prompts: Iterable[str], *, min_frequency: int = 2) -> list[Subject]:
    """Every candidate seen at least `min_frequency` times, best first (ties by phrase)."""
    as_chunk: Counter[str] = Counter()
    word_docs: Counter[str] = Counter()
    for prompt in prompts:
        found = chunks(prompt, subject_clause=True)
        as_chunk.update(found)
        word_docs.update({w for phrase in found for w in phrase.split()})
    subjects = [_subject(p, n, word_docs) for p, n in as_chunk.items() if n >= min_frequency]
    return sorted(subjects, key=lambda s: (-s.score, s.phrase))


def _subject(phrase: str, frequency: int, word_docs: Counter[str]) -> Subject:
    """Ambiguity: 1 - (prompts using the phrase) / (prompts using its rarest word)."""
    rarest = min(word_docs[w] for w in phrase.split())
    ambiguity = 1.0 - frequency / max(rarest, frequency)
    length = LENGTH_WEIGHT.get(len(phrase.split()), 0.5)
    score = math.log1p(frequency) * (1.0 - ambiguity) * length
    return Subject(phrase=phrase, frequency=frequency, ambiguity=round(ambiguity, 4), score=round(score, 4))


def subject_of(prompt: str) -> str:
    """The first candidate noun phrase: prompts name their subject first ('' if none)."""
    found = chunks(prompt, subject_clause=True)
    return found[0] if found else ""


def top_subjects(prompts: Iterable[str], *, count: int, min_frequency: int = 2) -> list[str]:
    """The `count` best-scored subject phrases of a held-out set."""
    return [s.phrase for s in score_subjects(prompts, min_frequency=min_frequency)[:count]]
