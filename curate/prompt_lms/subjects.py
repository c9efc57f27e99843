"""Subjects for evaluating the concept model: noun phrases scored by frequency, ambiguity, length.

Noun phrases come from a real part-of-speech tagger and chunker: the Brill-style tagger of
the `pattern` library as TextBlob ships it (its lexicon, context rules and chunk grammar are
package data, so it runs with no download; only its parser module is loaded, not TextBlob's
NLTK-based package). Style phrases and artist lists ("by X and Y") are cut out first. A
prompt names its subject first, so subject candidates come from the text before the first
comma and before its first preposition other than "of": "a knight in a ruined hall" offers
"knight", not the setting "ruined hall"; "portrait of an old wizard holding a staff" offers
"old wizard" and "staff" (picture kinds such as "portrait" are no subjects). Each candidate is
scored by

- frequency: how many held-out prompts offer it (log-scaled), so evaluation subjects are ones
  the data actually talks about;
- ambiguity: the share of prompts mentioning its words that use them inside a *different*
  phrase ("fox" inside "red fox", "arctic fox"): a phrase that is mostly part of others is
  underspecified as a subject (the published method measured word-sense ambiguity with
  WordNet, which cannot be had offline; this is the corpus's own measure of it);
- length: two- and three-word phrases are preferred to single words (too vague) and to
  long ones (too specific to generalise).
"""

from __future__ import annotations

import functools
import importlib.util
import math
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from curate.errors import CurateError
from curate.prompt_lms.clean import ARTIST_PATTERN, STYLE_PATTERN, normalize

NOUN_TAGS = ("NN", "JJ", "VBG", "VBN", "CD", "FW")  # what a noun phrase of a prompt keeps (by tag prefix)
PICTURE_KINDS = frozenset(
    "portrait painting photo photograph picture illustration drawing sketch render image closeup close-up shot "
    "poster artwork art wallpaper view scene".split()
)
LENGTH_WEIGHT = {1: 0.5, 2: 1.0, 3: 1.0, 4: 0.7}


@dataclass(frozen=True)
class Subject:
    """One candidate subject and the figures behind its score."""

    phrase: str
    frequency: int
    ambiguity: float
    score: float


@functools.cache
def pattern_parser() -> Any:
    """pattern's English parser as TextBlob ships it, loaded from its files alone.

    Importing `textblob` imports NLTK (and with it scipy and scikit-learn: seconds); the
    parser module uses the standard library only, so it is loaded on its own.
    """
    spec = importlib.util.find_spec("textblob")
    if spec is None or not spec.submodule_search_locations:
        raise CurateError("Subjects are found with TextBlob's part-of-speech tagger: pip install textblob")
    root = Path(list(spec.submodule_search_locations)[0])
    module_spec = importlib.util.spec_from_file_location("curate_pattern_text", root / "_text.py")
    module = importlib.util.module_from_spec(module_spec)  # type: ignore[arg-type]
    module_spec.loader.exec_module(module)  # type: ignore[union-attr]
    data = root / "en"
    lexicon = module.Lexicon(path=str(data / "en-lexicon.txt"), morphology=str(data / "en-morphology.txt"),
                             context=str(data / "en-context.txt"), entities=str(data / "en-entities.txt"),
                             language="en")
    return module.Parser(lexicon=lexicon, default=("NN", "NNP", "CD"), language="en")


@functools.lru_cache(maxsize=65536)
def noun_phrases(clause: str) -> tuple[tuple[str, bool], ...]:
    """(phrase, after a preposition) for each noun phrase of a clause, in order.

    A participle tagged as a verb right before a noun phrase ("ruined hall") is read as its
    adjective, and a noun or foreign word the chunker left out ("samurai") as a phrase of its
    own; leading determiners and pronouns are dropped; phrases keep 1-4 words.
    """
    found: list[tuple[str, bool]] = []
    for sentence in pattern_parser().parse(clause, tags=True, chunks=True, collapse=False):
        current: list[str] = []
        setting = False
        opened = setting
        for i, (word, tag, chunk, _) in enumerate(sentence):
            joins = _is_participle(sentence, i) or (chunk == "O" and tag.startswith(("FW", "NN")))  # missed nouns
            if chunk.endswith("NP") or joins:
                if chunk.startswith("B-") and current and not _is_participle(sentence, i - 1):
                    found += _phrase(current, opened)
                    current = []
                if not current:
                    opened = setting
                if tag.startswith(NOUN_TAGS):
                    current.append(word)
                continue
            found += _phrase(current, opened)
            current = []
            if tag in ("IN", "TO") and word != "of":
                setting = True
        found += _phrase(current, opened)
    return tuple(found)


def _is_participle(sentence: list[list[str]], i: int) -> bool:
    """A participle outside a noun phrase that runs straight into an adjective or noun: "ruined hall"
    (not "holding a staff", whose verb takes an object)."""
    return (0 <= i < len(sentence) - 1 and sentence[i][1].startswith(("VBN", "VBG"))
            and not sentence[i][2].endswith("NP") and sentence[i + 1][1].startswith(("NN", "JJ")))


def _phrase(words: list[str], setting: bool) -> list[tuple[str, bool]]:
    while words and words[-1].isdigit():
        words = words[:-1]
    if not 1 <= len(words) <= 4 or words[-1] in PICTURE_KINDS:
        return []
    return [(" ".join(words), setting)]


def chunks(prompt: str, *, subject_clause: bool = False) -> list[str]:
    """Noun phrases of one prompt (artists and style phrases cut out), in order, without duplicates.

    `subject_clause` keeps only subject candidates: phrases before the first comma that are not
    the object of a preposition other than "of" (settings such as "in a snowy forest").
    """
    text = normalize(prompt).lower()
    text = text.split(",", 1)[0] if subject_clause else text
    found: list[str] = []
    for clause in ARTIST_PATTERN.sub(",", STYLE_PATTERN.sub(",", text)).split(","):
        for phrase, setting in noun_phrases(clause.strip()) if clause.strip() else ():
            if phrase not in found and not (subject_clause and setting):
                found.append(phrase)
    return found


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
