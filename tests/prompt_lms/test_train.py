"""Training both recipes on the synthetic corpus: loss falls, outputs have the trained shape,
freezing is exact, and a resumed run ends where an uninterrupted one does."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from curate.errors import CurateError
from curate.prompt_lms.card import PromptModelCard
from curate.prompt_lms.config import RECIPE_GENERATION, GenerationSettings
from curate.prompt_lms.generation import generate
from curate.prompt_lms.history import CURVES_PNG, HISTORY_CSV
from curate.prompt_lms.models import freeze_to_top, load_prompt_model
from curate.prompt_lms.subjects import subject_of
from curate.prompt_lms.train import run_train
from curate.text_metrics import contains_phrase, words
from tests.prompt_lms.conftest import TAGS, concept_config

SUBJECTS = ["a red fox", "a lighthouse", "an old castle", "a black cat"]
SHORT = GenerationSettings(max_length=24, min_length=0, temperature=0.8, top_p=0.95, repetition_penalty=1.0)


def _history(model_dir: Path, name: str) -> list[float]:
    with open(model_dir / HISTORY_CSV) as f:
        return [float(r["value"]) for r in csv.DictReader(f) if r["name"] == name]


def _generate(model_dir: Path, texts: list[str], settings: GenerationSettings, card: PromptModelCard | None = None):
    model, tokenizer = load_prompt_model(str(model_dir), (card or PromptModelCard.load(model_dir)).recipe)
    return generate(model, tokenizer, card or PromptModelCard.load(model_dir), texts, settings=settings, num=5, seed=0)


def test_concept_loss_falls_and_outputs_are_written(concept_model: Path) -> None:
    train, validation = _history(concept_model, "train_loss"), _history(concept_model, "validation_loss")
    assert train[-1] < train[0] / 2
    assert validation[-1] < validation[0]
    card = PromptModelCard.load(concept_model)
    assert card.recipe == "concept" and card.best_validation_loss == pytest.approx(min(validation), abs=1e-5)
    assert (concept_model / CURVES_PNG).read_bytes()[:4] == b"\x89PNG"


def test_trained_concept_model_writes_whole_prompts_about_the_subject(concept_model: Path, tiny_gpt2: Path) -> None:
    trained = _generate(concept_model, SUBJECTS, SHORT)
    card = PromptModelCard.load(concept_model)
    untrained = _generate(tiny_gpt2, SUBJECTS, SHORT, card=card)

    def whole_and_faithful(made: list) -> float:
        # A prompt counts when it opens with the start tag, closes with the end tag, and what it
        # closed keeps the subject (a ramble cut off at --max-length is no prompt).
        ok = [g.raw.startswith(TAGS.start) and g.complete and contains_phrase(g.text, g.input) for g in made]
        return sum(ok) / len(ok)

    assert whole_and_faithful(trained) >= 0.8
    assert whole_and_faithful(untrained) <= 0.4
    assert all(TAGS.start not in g.text and TAGS.end not in g.text for g in trained)
    assert sum(len(words(g.text)) > len(words(g.input)) + 3 for g in trained) >= 0.8 * len(trained)


def test_upsampler_outputs_are_longer_and_keep_their_subject(upsample_model: Path) -> None:
    assert _history(upsample_model, "validation_loss")[-1] < _history(upsample_model, "validation_loss")[0]
    assert len(_history(upsample_model, "validation_meteor")) == 4  # one per epoch
    plain = ["a red fox on a cliff", "a lighthouse at sunset", "a small robot in the rain"]
    made = _generate(upsample_model, plain, SHORT)
    longer = sum(len(words(g.text)) > len(words(g.input)) for g in made) / len(made)
    kept = sum(contains_phrase(g.text, subject_of(g.input)) for g in made) / len(made)
    assert longer >= 0.9 and kept >= 0.8


def test_recipe_defaults_follow_the_published_settings() -> None:
    from curate.prompt_lms.config import UpsampleTrainConfig

    upsample = UpsampleTrainConfig()
    assert (upsample.base, upsample.lr, upsample.batch_size, upsample.grad_accum, upsample.epochs) == (
        "google/flan-t5-base", 3e-4, 8, 8, 5)
    assert upsample.prefix == "translate basic prompt to detailed longer prompt: "
    assert (RECIPE_GENERATION["upsample"].min_length, RECIPE_GENERATION["upsample"].repetition_penalty) == (40, 1.4)


def test_frozen_weights_stay_byte_identical(tmp_path: Path, prepared: Path, tiny_gpt2: Path) -> None:
    out = tmp_path / "frozen"
    run_train(concept_config(prepared, out, tiny_gpt2, epochs=1, trainable_layers=1))
    before, after = load_file(tiny_gpt2 / "model.safetensors"), load_file(out / "model.safetensors")
    changed = {name for name in before if not torch.equal(before[name], after[name])}
    assert changed and all(n.startswith(("transformer.h.1.", "transformer.ln_f.")) for n in changed)
    assert any(n.startswith("transformer.h.1.") for n in changed)
    assert not any(n.startswith(("transformer.h.0.", "transformer.wte", "transformer.wpe")) for n in changed)


def test_freeze_counts_and_t5_keeps_the_decoder_top(tiny_t5: Path) -> None:
    model, _ = load_prompt_model(str(tiny_t5), "upsample")
    trainable, total = freeze_to_top(model, 1)
    names = {n for n, p in model.named_parameters() if p.requires_grad}
    assert 0 < trainable < total
    assert names and all(n.startswith(("decoder.block.1.", "decoder.final_layer_norm", "lm_head")) for n in names)


def test_resume_ends_where_an_uninterrupted_run_does(tmp_path: Path, prepared: Path, tiny_gpt2: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    straight = tmp_path / "straight"
    run_train(concept_config(prepared, straight, tiny_gpt2, epochs=2))
    stopped = tmp_path / "stopped"
    _kill_after_first_checkpoint(monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        run_train(concept_config(prepared, stopped, tiny_gpt2, epochs=2))
    monkeypatch.undo()
    assert PromptModelCard.load(stopped).epochs_run == 1
    with pytest.raises(CurateError, match="--resume"):
        run_train(concept_config(prepared, stopped, tiny_gpt2, epochs=2))
    run_train(concept_config(prepared, stopped, tiny_gpt2, epochs=2, resume=True))
    a = load_file(straight / "checkpoints" / "last" / "model.safetensors")
    b = load_file(stopped / "checkpoints" / "last" / "model.safetensors")
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)
    assert _history(straight, "validation_loss") == pytest.approx(_history(stopped, "validation_loss"), abs=1e-5)
    assert PromptModelCard.load(stopped).epochs_run == 2


def _kill_after_first_checkpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    """Simulate a run killed right after epoch 1 was checkpointed."""
    import curate.prompt_lms.trainer as trainer

    real = trainer.save_last

    def save_then_die(*args: object, **kwargs: object) -> None:
        real(*args, **kwargs)
        raise KeyboardInterrupt

    monkeypatch.setattr(trainer, "save_last", save_then_die)


def test_raw_prompts_are_prepared_into_the_model_folder(tmp_path: Path, tiny_gpt2: Path) -> None:
    from curate.synthetic.prompt_corpus import synthetic_prompts

    csv_path = tmp_path / "prompts.csv"
    csv_path.write_text("prompt\n" + "".join(f'"{p}"\n' for p in synthetic_prompts(80, seed=5)))
    summary = run_train(concept_config(csv_path, tmp_path / "model", tiny_gpt2, epochs=1))
    assert (tmp_path / "model" / "data" / "prompts-report.json").is_file()
    assert summary.train_rows > 0 and PromptModelCard.load(tmp_path / "model").data.endswith("data")


@pytest.mark.parametrize("asked, bf16, allow_fp16, expected", [
    ("auto", True, False, "bf16"),
    ("auto", False, False, "fp32"),  # T5 on an old GPU: fp32, never fp16
    ("auto", False, True, "fp16"),  # GPT-2 on an old GPU: fp16 with a grad scaler
    ("fp32", True, True, "fp32"),
])
def test_training_precision_on_cuda(asked: str, bf16: bool, allow_fp16: bool, expected: str,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from curate.prompt_lms.models import training_precision

    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: bf16)
    precision = training_precision(asked, torch.device("cuda"), allow_fp16=allow_fp16)
    assert precision.name == expected and precision.needs_scaler == (expected == "fp16")
    with pytest.raises(CurateError, match="never fp16"):
        training_precision("fp16", torch.device("cuda"), allow_fp16=False)
