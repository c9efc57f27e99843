"""Prompt model folders: damaged files named in one line, copies that load anywhere, a local
base never mistaken for a hub id, training positions that match generation's, inputs checked first."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from curate.cli.app import app
from curate.errors import CurateError
from curate.prompt_lms.batches import Batcher
from curate.prompt_lms.card import PromptModelCard
from curate.prompt_lms.config import PromptsEvalConfig
from curate.prompt_lms.models import load_prompt_model
from curate.prompt_lms.train import run_train
from tests.cli_checks import one_line_error, truncate
from tests.prompt_lms.conftest import TAGS, concept_config

runner = CliRunner()


@pytest.mark.parametrize("damage", ["model.safetensors", "config.json", "tokenizer.json", "tokenizer_config.json",
                                    "card.json"])
def test_a_truncated_model_file_is_named_in_one_line(concept_model: Path, tmp_path: Path, damage: str) -> None:
    skip = shutil.ignore_patterns("checkpoints", "data")
    copy = Path(shutil.copytree(concept_model, tmp_path / "model", ignore=skip))
    truncate(copy / damage)
    line = one_line_error(runner.invoke(app, ["prompts", "generate", str(copy), "a red fox"]), damage)
    assert "--base" not in line


def test_a_truncated_checkpoint_is_named_on_resume(prepared: Path, tiny_gpt2: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    run_train(concept_config(prepared, out, tiny_gpt2, epochs=1, eval_samples=0))
    truncate(out / "checkpoints" / "last" / "optimizer.pt")
    result = runner.invoke(app, ["prompts", "train", "concept", str(prepared), "--out", str(out), "--resume",
                                 "--epochs", "2", "--device", "cpu"])
    one_line_error(result, "optimizer.pt")


def test_a_copied_model_folder_generates_anywhere(concept_model: Path, tmp_path: Path) -> None:
    copy = Path(shutil.copytree(concept_model, tmp_path / "far" / "away"))
    result = runner.invoke(app, ["prompts", "generate", str(copy), "a red fox", "--max-length", "20", "-q"])
    assert result.exit_code == 0 and result.stdout.startswith("a red fox"), (result.output, result.exception)


def test_a_local_folder_named_like_a_hub_id_is_said_and_recorded(prepared: Path, tiny_gpt2: Path, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch,
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    shutil.copytree(tiny_gpt2, tmp_path / "gpt2")
    monkeypatch.chdir(tmp_path)
    with caplog.at_level(logging.INFO, logger="curate"):
        run_train(concept_config(prepared, tmp_path / "model", "gpt2", epochs=1, eval_samples=0))
    card = PromptModelCard.load(tmp_path / "model")
    assert card.base_source == "local" and card.base == str(tmp_path / "gpt2")
    assert any("local folder" in r.message and "not the hub model" in r.message for r in caplog.records)
    with pytest.raises(CurateError, match="no such folder"):
        run_train(concept_config(prepared, tmp_path / "other", "./missing/gpt2", epochs=1))


def test_training_positions_match_generation(tiny_gpt2: Path) -> None:
    """The logits training computes for a left-padded row are those `generate` computes for it."""
    model, tokenizer = load_prompt_model(str(tiny_gpt2), "concept")
    model.eval()
    texts = [f"{TAGS.start} a red fox", f"{TAGS.start} a lighthouse on a cliff , oil painting , by greg rutkowski"]
    batch = Batcher(tokenizer, recipe="concept", max_tokens=96)(None, texts)
    assert batch["attention_mask"][0, 0] == 0  # the short row is padded, on the left
    with torch.no_grad():
        trained = model(**{k: v for k, v in batch.items() if k != "labels"}).logits[:, -1]
        unpositioned = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits[:, -1]
        made = model.generate(**tokenizer(texts, padding=True, return_tensors="pt"), max_new_tokens=1, do_sample=False,
                              output_logits=True, return_dict_in_generate=True, pad_token_id=tokenizer.pad_token_id)
    assert torch.allclose(trained, made.logits[0], atol=1e-5)
    assert not torch.allclose(unpositioned[0], made.logits[0][0], atol=1e-3)  # the padding does matter
    alone = Batcher(tokenizer, recipe="concept", max_tokens=96)(None, texts[:1])
    with torch.no_grad():
        single = model(**{k: v for k, v in alone.items() if k != "labels"}).logits[0, -1]
    assert torch.allclose(single, trained[0], atol=1e-5)


@pytest.mark.parametrize("text", ["", "   "])
def test_blank_texts_are_refused(upsample_model: Path, concept_model: Path, text: str) -> None:
    for model in (concept_model, upsample_model):
        one_line_error(runner.invoke(app, ["prompts", "generate", str(model), "a red fox", text]), "TEXTS is empty")


def test_eval_loads_its_scorer_before_generating(concept_model: Path, prepared: Path, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    import curate.prompt_lms.eval as evaluation

    def no_generation(*args: object, **kwargs: object) -> None:
        raise AssertionError("generation started before the scorer was loaded")

    monkeypatch.setattr(evaluation, "generate", no_generation)
    with pytest.raises(CurateError, match="--score-model"):
        evaluation.run_eval(PromptsEvalConfig(model=concept_model, data=prepared, score_model=str(tmp_path / "none")))


def test_trainable_layers_zero_trains_every_layer_from_the_cli(prepared: Path, tiny_gpt2: Path, tmp_path: Path) -> None:
    from safetensors.torch import load_file

    out = tmp_path / "all"
    result = runner.invoke(app, ["prompts", "train", "concept", str(prepared), "--out", str(out),
                                 "--base", str(tiny_gpt2), "--trainable-layers", "0", "--epochs", "1",
                                 "--eval-samples", "0", "--lr", "3e-3", "--device", "cpu", "-q"])
    assert result.exit_code == 0, (result.output, result.exception)
    before, after = load_file(tiny_gpt2 / "model.safetensors"), load_file(out / "model.safetensors")
    assert not torch.equal(before["transformer.wte.weight"], after["transformer.wte.weight"])  # embeddings trained too
    assert "trainable parameters" in result.stdout and PromptModelCard.load(out).trainable_layers == 0


def test_concept_training_scores_its_validation_generations(concept_model: Path) -> None:
    import csv

    with open(concept_model / "log_history.csv") as f:
        names = [r["name"] for r in csv.DictReader(f)]
    assert names.count("validation_meteor") == 3 and names.count("validation_completion") == 3
    assert {"validation_meteor", "validation_completion"} <= set(PromptModelCard.load(concept_model).metrics)
