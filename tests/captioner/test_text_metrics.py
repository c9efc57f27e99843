"""BLEU, METEOR (exact) and cosine against values worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from curate.text_metrics import (
    corpus_bleu,
    mean_meteor,
    meteor,
    rowwise_cosine,
    sentence_bleu,
    tokenize,
)


def test_tokenize_splits_punctuation_and_lowercases() -> None:
    assert tokenize("A red, round Ball.") == ["a", "red", ",", "round", "ball", "."]


def test_bleu_identical_is_100_and_disjoint_is_0() -> None:
    text = "a large red circle on a white background"
    assert corpus_bleu([text], [text]) == pytest.approx(100.0)
    assert sentence_bleu(text, text) == pytest.approx(100.0)
    assert corpus_bleu(["blue star"], [text]) == 0.0


def test_corpus_bleu_by_hand() -> None:
    # hyp: a red circle on a white background (7 tokens); ref: a large red circle on a white background (8)
    # matches 7/7, 5/6, 4/5, 3/4; brevity penalty exp(1 - 8/7)
    hyp, ref = "a red circle on a white background", "a large red circle on a white background"
    expected = 100 * math.exp(1 - 8 / 7) * (1 * 5 / 6 * 4 / 5 * 3 / 4) ** 0.25
    assert corpus_bleu([hyp], [ref]) == pytest.approx(expected)


def test_sentence_bleu_smooths_missing_orders() -> None:
    # 3 tokens, 2 unigram matches, 0 bigram matches: p1 = 2/3, p2 = 1/(2*2), p3 = 1/(4*1); no 4-grams
    expected = 100 * (2 / 3 * 1 / 4 * 1 / 4) ** (1 / 3)
    assert sentence_bleu("red blue circle", "red square circle") == pytest.approx(expected)


def test_meteor_by_hand() -> None:
    # hyp "red circle on blue", ref "a red circle on a blue background": 4 matches, 2 chunks
    p, r = 4 / 4, 4 / 7
    f_mean = p * r / (0.9 * p + 0.1 * r)
    expected = f_mean * (1 - 0.5 * (2 / 4) ** 3)
    assert meteor("red circle on blue", "a red circle on a blue background") == pytest.approx(expected)
    assert meteor("green", "a red circle") == 0.0
    same = "a red circle"
    assert meteor(same, same) == pytest.approx(1 - 0.5 * (1 / 3) ** 3)
    assert mean_meteor([same, "green"], [same, "a red circle"]) == pytest.approx((1 - 0.5 / 27) / 2)


def test_meteor_word_order_costs_chunks() -> None:
    assert meteor("circle red a", "a red circle") < meteor("a red circle", "a red circle")


def test_rowwise_cosine() -> None:
    a = np.array([[1.0, 0.0], [1.0, 1.0], [0.0, 0.0]])
    b = np.array([[2.0, 0.0], [-1.0, -1.0], [1.0, 0.0]])
    assert rowwise_cosine(a, b) == pytest.approx([1.0, -1.0, 0.0])
