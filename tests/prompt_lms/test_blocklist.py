"""The blocklist: better-profanity's list with curate's entries, normalised matching, a user's own
list, and the same list applied when prompts are generated."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from curate.cli.app import app
from curate.prompt_lms.blocklist import load_blocklist, package_list, words
from curate.prompt_lms.card import PromptModelCard
from curate.prompt_lms.config import GenerationSettings, PromptsPrepareConfig
from curate.prompt_lms.generation import banned_token_ids, generate
from curate.prompt_lms.models import load_prompt_model
from curate.prompt_lms.prepare import run_prepare
from curate.prompt_lms.train import run_train
from tests.prompt_lms.conftest import TAGS, concept_config

runner = CliRunner()


@pytest.fixture(scope="module")
def default():
    return load_blocklist()


@pytest.mark.parametrize("text, term", [
    ("a nude statue", "nude"), ("A NUDE statue", "nude"), ("nudes on a beach", "nudes"), ("a pornstar", "porn*"),
    ("nakedness and shame", "naked"), ("n.s.f.w", "nsfw"), ("N.S.F.W. art", "nsfw"), ("half-naked man", "naked"),
    ("sexually explicit photo", "sexually explicit"), ("a strip club at night", "strip club"),
])
def test_blocked_whatever_the_case_punctuation_or_inflection(default, text: str, term: str) -> None:
    assert default.match(text) == term


@pytest.mark.parametrize("text", [
    "explicit detail of a clock", "Naked-eye view of the moon", "a nudibranch in the sea", "a virgin forest",
    "bold brush stroke", "a comic strip", "the god of thunder", "a blue tit on a branch", "assess the classes",
    "a red fox", "a nude-colored dress",
])
def test_ordinary_picture_words_pass(default, text: str) -> None:
    assert default.match(text) is None


def test_the_default_is_the_package_list_with_curates_entries(default) -> None:
    package = {tuple(words(line)) for line in package_list().splitlines() if line.strip()}
    assert ("cunnilingus",) in package and default.match("cunnilingus") == "cunnilingus"  # from the package
    assert ("god",) in package and default.match("god") is None  # dropped by an exemption of ours
    assert ("nsfw",) not in package and default.match("nsfw") == "nsfw"  # added by ours
    assert len(default.terms) > 800


def test_a_users_list_replaces_the_default(tmp_path: Path) -> None:
    path = tmp_path / "words.txt"
    path.write_text("# mine\nlighthouse*\nred fox\n!red fox tail\n")
    mine = load_blocklist(path)
    assert mine.match("two lighthouses") == "lighthouse*" and mine.match("Red-Fox den") == "red fox"
    assert mine.match("a red fox tail") is None and mine.match("a nude statue") is None


def _table(path: Path, rows: list[str]) -> Path:
    pq.write_table(pa.table({"prompt": rows}), path)
    return path


def test_prepare_counts_what_it_blocked(tmp_path: Path) -> None:
    rows = ["nudes on a beach", "a pornstar", "nakedness", "n.s.f.w art", "explicit detail of a clock",
            "Naked-eye view of the moon", "a red fox"]
    report = run_prepare(PromptsPrepareConfig(inputs=(_table(tmp_path / "p.parquet", rows),), out=tmp_path / "out"))
    assert report.blocked_terms == {"nudes": 1, "porn*": 1, "naked": 1, "nsfw": 1}
    assert sum(report.kept.values()) == 3 and report.removed == {"blocklisted": 4}


def test_a_users_list_travels_from_data_to_model_to_generation(tmp_path: Path, tiny_gpt2: Path) -> None:
    from curate.synthetic.prompt_corpus import synthetic_prompts

    mine = tmp_path / "mine.txt"
    mine.write_text("castle\n")
    data = tmp_path / "data"
    run_prepare(PromptsPrepareConfig(inputs=(_table(tmp_path / "p.parquet", synthetic_prompts(120, seed=3)),), out=data,
                                     blocklist=mine, validation_fraction=0.2))
    mine.unlink()  # the data folder keeps its own copy
    model = tmp_path / "model"
    run_train(concept_config(data, model, tiny_gpt2, epochs=1, eval_samples=0))
    assert (model / "blocklist.txt").read_text() == "castle\n"
    result = runner.invoke(app, ["prompts", "generate", str(model), "an old castle"])
    assert result.exit_code == 2 and "blocked term 'castle'" in result.stderr, result.output
    ok = runner.invoke(app, ["prompts", "generate", str(model), "a nude statue", "--max-length", "5", "-q"])
    assert ok.exit_code == 0, ok.output  # the model's list replaced the default one


def test_generate_refuses_a_blocked_text(concept_model: Path) -> None:
    result = runner.invoke(app, ["prompts", "generate", str(concept_model), "a red fox", "a nude statue"])
    assert result.exit_code == 2 and result.stdout == ""
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and "'nude'" in lines[0]


def test_generation_never_writes_a_blocked_word(tmp_path: Path, default) -> None:
    """An untrained model samples its vocabulary almost uniformly: without the ban it writes 'nude'."""
    from curate.prompt_lms.builders import build_gpt2
    from curate.synthetic.prompt_corpus import corpus_words

    base = build_gpt2(tmp_path / "gpt2", words=corpus_words() + ["nude", "nudes"], tags=[TAGS.start, TAGS.end])
    model, tokenizer = load_prompt_model(str(base), "concept")
    card = PromptModelCard(recipe="concept", base=str(base), tags={"start": TAGS.start, "end": TAGS.end}, prefix="",
                           max_tokens=64, trainable_layers=None)
    nude = tokenizer.convert_tokens_to_ids("nude")
    assert [nude] in banned_token_ids(tokenizer, default)
    hot = GenerationSettings(max_length=24, min_length=24, temperature=1.5, top_p=1.0, repetition_penalty=1.0)
    free = generate(model, tokenizer, card, ["a red fox"], settings=hot, num=30, seed=0)
    kept = generate(model, tokenizer, card, ["a red fox"], settings=hot, num=30, seed=0, blocklist=default)
    assert any("nude" in g.text.split() for g in free)
    assert not any(default.match(g.text) for g in kept) and all(g.text for g in kept)
