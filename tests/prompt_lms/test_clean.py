"""Cleaning rules, the blocklist, tags, plain versions, subjects and the split, one by one."""

from __future__ import annotations

from pathlib import Path

import pytest

from curate.errors import CurateError
from curate.prompt_lms.blocklist import load_blocklist
from curate.prompt_lms.clean import (
    add_tags,
    normalize,
    plain_version,
    strip_tags,
)
from curate.prompt_lms.split import split_of
from curate.prompt_lms.subjects import chunks, score_subjects, subject_of
from curate.synthetic.prompt_corpus import synthetic_prompts


def test_normalize_collapses_whitespace_and_strips() -> None:
    assert normalize("  a \t red\n\nfox  ") == "a red fox"
    assert normalize(None) == ""


def test_default_blocklist_matches_whole_words_only() -> None:
    blocklist = load_blocklist()
    assert blocklist.match("a NUDE statue") == "nude"
    assert blocklist.match("a nudibranch in the sea") is None
    assert blocklist.match("a red fox") is None


def test_custom_blocklist_replaces_the_default(tmp_path: Path) -> None:
    path = tmp_path / "words.txt"
    path.write_text("# comment\n\nred fox\n")
    blocklist = load_blocklist(path)
    assert blocklist.match("a Red  Fox".replace("  ", " ")) == "red fox"
    assert blocklist.match("a nude statue") is None
    with pytest.raises(CurateError, match="--blocklist"):
        load_blocklist(tmp_path / "missing.txt")


def test_tags_round_trip_and_cut_at_the_end_tag() -> None:
    tagged = add_tags("a red fox", start="<s>", end="</s>")
    assert tagged == "<s> a red fox </s>"
    assert strip_tags(tagged + " trailing noise", start="<s>", end="</s>") == "a red fox"


@pytest.mark.parametrize("detailed, plain", [
    ("a red fox in a snowy forest by greg rutkowski, highly detailed, 8k", "a red fox in a snowy forest"),
    ("(portrait of a knight:1.3), trending on artstation", "portrait of a knight"),
    ("a castle, highly detailed 8k, by james gurney", "a castle"),
    ("highly detailed 8k, a castle", "highly detailed 8k"),  # nothing but style: the clause is kept
    ("a lighthouse on a cliff", "a lighthouse on a cliff"),
])
def test_plain_version_keeps_the_subject_and_drops_style(detailed: str, plain: str) -> None:
    assert plain_version(detailed) == plain


def test_chunker_finds_noun_phrases_not_artists_or_style() -> None:
    prompt = "a red fox in a snowy forest by greg rutkowski, highly detailed, soft colors"
    assert chunks(prompt) == ["red fox", "snowy forest", "soft colors"]
    assert chunks(prompt, subject_clause=True) == ["red fox"]  # "in a snowy forest" is the setting
    assert subject_of(prompt) == "red fox"


HELD_OUT_SUBJECTS = ["a knight", "an old wizard", "a merchant", "a white horse", "a young witch", "a giant robot",
                     "a tiny mouse", "a samurai"]
HELD_OUT_SETTINGS = ["in a ruined hall", "at a busy market", "on a misty hill", "under a stormy sky",
                     "inside a crystal cave", "beside a frozen lake"]


def test_subjects_of_prompts_written_another_way_are_subjects_not_settings() -> None:
    """Prompts of another shape than the synthetic corpus's: two-word settings, one-word subjects."""
    import random

    rng = random.Random(4)
    prompts = [f"{rng.choice(HELD_OUT_SUBJECTS)} {rng.choice(HELD_OUT_SETTINGS)}, "
               f"{rng.choice(['oil painting', 'dramatic lighting', 'concept art'])}, "
               f"by {rng.choice(['artgerm', 'wlop'])}"
               for _ in range(200)]
    top = {s.phrase for s in score_subjects(prompts, min_frequency=2)[:8]}
    assert top == {s.split(" ", 1)[1] for s in HELD_OUT_SUBJECTS}, top


@pytest.mark.parametrize("prompt, subjects", [
    ("portrait of an old wizard holding a staff", ["old wizard", "staff"]),  # a picture kind is no subject
    ("an astronaut riding a horse on mars", ["astronaut", "horse"]),  # the verb is not part of a phrase
    ("a knight in a ruined hall", ["knight"]),  # "ruined" read as an adjective, of the setting
])
def test_subject_candidates_follow_the_parse(prompt: str, subjects: list[str]) -> None:
    assert chunks(prompt, subject_clause=True) == subjects


def test_subject_scores_prefer_frequent_specific_two_word_phrases() -> None:
    prompts = ["a red fox in the rain"] * 5 + ["an arctic fox", "a fox"] + ["a cat"] * 5
    ranked = {s.phrase: s for s in score_subjects(prompts, min_frequency=1)}
    assert ranked["red fox"].score > ranked["cat"].score  # same frequency, single word is vaguer
    assert ranked["red fox"].score > ranked["arctic fox"].score  # more frequent
    assert ranked["fox"].ambiguity > 0.5  # "fox" is mostly part of longer phrases
    top = score_subjects(synthetic_prompts(300), min_frequency=2)[:8]
    assert {"red fox", "green dragon", "old castle"} <= {s.phrase for s in top}


def test_split_is_a_function_of_the_text_alone() -> None:
    prompts = sorted(set(synthetic_prompts(2000, seed=3)))
    first = {p: split_of(p, validation=0.1, test=0.1) for p in prompts}
    second = {p: split_of(p, validation=0.1, test=0.1) for p in reversed(prompts)}
    assert first == second
    assert split_of("A Red Fox", validation=0.1, test=0.1) == split_of("a red fox", validation=0.1, test=0.1)
    shares = {name: sum(v == name for v in first.values()) / len(first) for name in ("train", "validation", "test")}
    assert 0.05 < shares["test"] < 0.15 and 0.05 < shares["validation"] < 0.15
