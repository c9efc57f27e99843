"""Text-generation metrics: BLEU, METEOR (exact-match variant), embedding cosine, and the
prompt-side figures (best-of-references METEOR, distinct-n, subject faithfulness).

Written here rather than pulled from `sacrebleu`/`nltk`: NLTK's METEOR needs the WordNet
corpus, which offline machines cannot download, and the whole module is a few dozen lines
of pure Python that any prompt-writing model (captioner, prompt LMs) can share.

* BLEU follows Papineni et al. (2002) as `sacrebleu` computes it: clipped n-gram
  precisions up to 4-grams, geometric mean, brevity penalty, on a 0-100 scale. Tokens are
  lower-cased words and single punctuation marks (`sacrebleu`'s 13a tokeniser keeps case,
  so figures differ slightly from it on mixed-case text).
* METEOR follows Banerjee & Lavie (2005) with the exact-match module only (no stemming,
  no WordNet synonyms): unigram F-mean weighted towards recall (alpha 0.9) times a
  fragmentation penalty 0.5 * (chunks / matches)^3, NLTK's default parameters. Scores are
  therefore at most NLTK's, equal when no stem or synonym would have matched.
* Cosine is the mean row-wise cosine of two embedding matrices (any text encoder).
* Words for distinct-n and faithfulness are lower-cased alphanumeric runs, punctuation dropped.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from typing import Iterable, Sequence

import numpy as np

TOKEN = re.compile(r"\w+|[^\w\s]", re.UNICODE)
WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
BLEU_ORDER = 4
METEOR_ALPHA, METEOR_BETA, METEOR_GAMMA = 0.9, 3.0, 0.5


def tokenize(text: str) -> list[str]:
    """Lower-cased words and punctuation marks: `A red, round ball.` -> a red , round ball ."""
    return TOKEN.findall(text.lower())


def _ngrams(tokens: list[str], n: int) -> Counter:
    return Counter(tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1))


def _bleu_counts(hyp: list[str], ref: list[str]) -> tuple[list[int], list[int]]:
    """Clipped matches and hypothesis n-gram totals per order 1..4."""
    matches, totals = [], []
    for n in range(1, BLEU_ORDER + 1):
        hyp_grams, ref_grams = _ngrams(hyp, n), _ngrams(ref, n)
        matches.append(sum(min(c, ref_grams[g]) for g, c in hyp_grams.items()))
        totals.append(max(len(hyp) - n + 1, 0))
    return matches, totals


def _brevity_penalty(hyp_len: int, ref_len: int) -> float:
    if hyp_len == 0:
        return 0.0
    return 1.0 if hyp_len > ref_len else math.exp(1.0 - ref_len / hyp_len)


def corpus_bleu(hypotheses: Sequence[str], references: Sequence[str]) -> float:
    """Corpus BLEU-4 (0-100), one reference per hypothesis; 0 when some order has no match."""
    if len(hypotheses) != len(references):
        raise ValueError("corpus_bleu needs one reference per hypothesis")
    matches, totals = [0] * BLEU_ORDER, [0] * BLEU_ORDER
    hyp_len = ref_len = 0
    for hyp_text, ref_text in zip(hypotheses, references):
        hyp, ref = tokenize(hyp_text), tokenize(ref_text)
        m, t = _bleu_counts(hyp, ref)
        matches = [a + b for a, b in zip(matches, m)]
        totals = [a + b for a, b in zip(totals, t)]
        hyp_len, ref_len = hyp_len + len(hyp), ref_len + len(ref)
    if min(matches) == 0:
        return 0.0
    log_precision = sum(math.log(m / t) for m, t in zip(matches, totals)) / BLEU_ORDER
    return 100.0 * _brevity_penalty(hyp_len, ref_len) * math.exp(log_precision)


def sentence_bleu(hypothesis: str, reference: str) -> float:
    """Smoothed sentence BLEU (0-100), `sacrebleu`'s `exp` smoothing and effective order.

    An order with no match counts as 1 / (2^k * total) for the k-th such order, so one short
    sentence does not score 0 for lacking a 4-gram; orders longer than the sentence are skipped.
    """
    hyp, ref = tokenize(hypothesis), tokenize(reference)
    matches, totals = _bleu_counts(hyp, ref)
    logs, halvings = [], 1.0
    for m, t in zip(matches, totals):
        if t == 0:
            break
        if m == 0:
            halvings *= 2.0
            logs.append(math.log(1.0 / (halvings * t)))
        else:
            logs.append(math.log(m / t))
    if not logs:
        return 0.0
    return 100.0 * _brevity_penalty(len(hyp), len(ref)) * math.exp(sum(logs) / len(logs))


def _align(hyp: list[str], ref: list[str]) -> list[tuple[int, int]]:
    """Exact unigram alignment, each hypothesis word to an unused identical reference word.

    Among candidates the one right after the previous match is preferred (keeping chunks
    whole), else the leftmost: the fewest-chunk alignment for all but contrived sentences.
    """
    used: set[int] = set()
    pairs: list[tuple[int, int]] = []
    for i, word in enumerate(hyp):
        free = [j for j, w in enumerate(ref) if w == word and j not in used]
        if not free:
            continue
        after = pairs[-1][1] + 1 if pairs else None
        j = after if after in free else free[0]
        used.add(j)
        pairs.append((i, j))
    return pairs


def meteor(hypothesis: str, reference: str) -> float:
    """METEOR (0-1) with exact matching only; 0 when no word matches."""
    hyp, ref = tokenize(hypothesis), tokenize(reference)
    pairs = _align(hyp, ref)
    m = len(pairs)
    if m == 0:
        return 0.0
    precision, recall = m / len(hyp), m / len(ref)
    f_mean = precision * recall / (METEOR_ALPHA * precision + (1 - METEOR_ALPHA) * recall)
    chunks = 1 + sum(1 for (i0, j0), (i1, j1) in zip(pairs, pairs[1:]) if not (i1 == i0 + 1 and j1 == j0 + 1))
    penalty = METEOR_GAMMA * (chunks / m) ** METEOR_BETA
    return f_mean * (1.0 - penalty)


def mean_meteor(hypotheses: Sequence[str], references: Sequence[str]) -> float:
    """Average sentence METEOR over pairs (METEOR has no corpus form in the original paper)."""
    scores = [meteor(h, r) for h, r in zip(hypotheses, references, strict=True)]
    return float(np.mean(scores)) if scores else 0.0


def rowwise_cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine of row i of `a` with row i of `b`: float32 (N,); zero vectors give 0."""
    a64, b64 = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    norms = np.linalg.norm(a64, axis=1) * np.linalg.norm(b64, axis=1)
    dots = np.einsum("nd,nd->n", a64, b64)
    return np.where(norms > 0, dots / np.maximum(norms, 1e-12), 0.0).astype(np.float32)


def words(text: str) -> list[str]:
    """Lower-cased word tokens, punctuation dropped."""
    return WORD.findall(text.lower())


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
