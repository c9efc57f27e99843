"""`caption train`: loss falls, the best checkpoint is kept, captions see the picture, resume works."""

from __future__ import annotations

import random

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

from curate.captioner.card import CaptionerLayout
from curate.captioner.config import CaptionGenerateConfig, DecodeConfig
from curate.captioner.generate import run_caption_generate
from curate.captioner.loss_curve import read_history
from curate.captioner.store import checkpoint_dir, load_checkpoint, read_card
from curate.captioner.train import run_caption_train
from curate.errors import CurateError
from tests.captioner.conftest import train_config
from tests.captioner.scenes_subset import names_object


def test_training_loss_falls_and_the_best_epoch_is_kept(trained) -> None:
    out, summary = trained
    history = read_history(CaptionerLayout(out).history)
    assert [r.epoch for r in history] == list(range(1, 13))
    assert history[-1].train_loss < 0.4 * history[0].train_loss
    assert min(r.val_loss for r in history) < 0.5 * history[0].val_loss
    best = min(history, key=lambda r: r.val_loss)
    assert read_card(CaptionerLayout(out).best).epoch == best.epoch == summary.best.epoch
    assert read_card(CaptionerLayout(out).last).epoch == 12
    assert checkpoint_dir(out) == CaptionerLayout(out).best
    assert CaptionerLayout(out).curve.read_bytes().startswith(b"\x89PNG")
    assert summary.train_pairs + summary.val_pairs == 600 and summary.val_pairs > 10


def _rates(captions: list[str], scenes: list) -> np.ndarray:
    """Share of captions naming (colour and shape together, colour, shape) of the scene's object."""
    judged = [(names_object(c, s), s.objects[0].colour in c.split(), s.objects[0].shape in c.split())
              for c, s in zip(captions, scenes)]
    return np.mean(np.array(judged, dtype=float), axis=0)


def test_held_out_captions_name_the_shape_and_colour_far_above_chance(trained, subsets, scenes, tmp_path) -> None:
    out, _ = trained
    table = tmp_path / "prompts.parquet"
    run_caption_generate(CaptionGenerateConfig(model=out, inputs=(subsets[1],), out=table, device="cpu", workers=0), quiet=True)
    rows = pq.read_table(table).to_pylist()
    held_out = scenes[1]
    assert [r["reference"] for r in rows] == [s.caption for s in held_out]  # one row per image, in order
    captions = [r["prompt"] for r in rows]
    both, colour, shape = _rates(captions, held_out)
    # Chance, measured: the same captions judged against other scenes' pictures. A captioner that
    # ignored its image (writing the commonest colours and shapes) scores the same either way.
    rng = random.Random(0)
    chance = np.mean([_rates(captions, rng.sample(held_out, len(held_out))) for _ in range(20)], axis=0)
    chance = np.maximum(chance, [1 / 40, 1 / 8, 1 / 5])  # never below uniform guessing (8 colours, 5 shapes)
    assert both >= 0.25 and both >= 5 * chance[0], (both, chance, captions[:10])
    assert colour >= 0.6 and colour >= 3 * chance[1], (colour, chance)
    assert shape >= 1.5 * chance[2], (shape, chance)


def test_resume_continues_from_the_last_epoch_exactly(subsets, caption_models, tmp_path) -> None:
    small = dict(limit=60, epochs=4)
    whole = run_caption_train(train_config(subsets[0], tmp_path / "whole", caption_models, **small), quiet=True)
    first = run_caption_train(train_config(subsets[0], tmp_path / "cut", caption_models, limit=60, epochs=2), quiet=True)
    assert [r.epoch for r in first.history] == [1, 2]
    resumed = run_caption_train(
        train_config(subsets[0], tmp_path / "cut", caption_models, resume=True, **small), quiet=True
    )
    assert resumed.resumed_from == 2
    assert [r.epoch for r in resumed.history] == [1, 2, 3, 4]
    for a, b in zip(whole.history, resumed.history):
        assert a.train_loss == pytest.approx(b.train_loss, rel=1e-5)
        assert a.val_loss == pytest.approx(b.val_loss, rel=1e-5)
    assert [r.epoch for r in read_history(tmp_path / "cut" / "history.csv")] == [1, 2, 3, 4]


def test_an_existing_captioner_is_not_overwritten_by_accident(trained, subsets, caption_models) -> None:
    out, _ = trained
    with pytest.raises(CurateError, match="--resume .* or --overwrite"):
        run_caption_train(train_config(subsets[0], out, caption_models), quiet=True)
    with pytest.raises(CurateError, match="--decoder"):
        run_caption_train(train_config(subsets[0], out, caption_models, resume=True, decoder="gpt2"), quiet=True)


def test_a_reloaded_checkpoint_writes_the_same_text(trained, tmp_path) -> None:
    from curate.captioner.image_tower import FrozenTowerCopy
    from curate.captioner.store import save_checkpoint
    from curate.models.image_encoder import ImageEncoder

    out, _ = trained
    model, card, image = load_checkpoint(out, device=torch.device("cpu"))
    features = torch.randn(6, card.image_dim, generator=torch.Generator().manual_seed(0)) * 3
    greedy = DecodeConfig(max_length=16)
    beams = DecodeConfig(max_length=16, num_beams=3)
    before = (model.generate(features, settings=greedy), model.generate(features, settings=beams))
    tower = ImageEncoder(image, device=torch.device("cpu"))
    save_checkpoint(tmp_path / "copy", model, card, image_tower=FrozenTowerCopy(tower))
    again, card_again, image_again = load_checkpoint(tmp_path / "copy", device=torch.device("cpu"))
    assert (again.generate(features, settings=greedy), again.generate(features, settings=beams)) == before
    # The tower travels inside the checkpoint: the copy loads its own, with the same weights.
    assert card_again == card and image_again == str(tmp_path / "copy" / "image")
    pixels = np.random.default_rng(0).integers(0, 256, (2, 64, 64, 3), dtype=np.uint8)
    assert np.array_equal(ImageEncoder(image_again, device=torch.device("cpu")).encode(pixels), tower.encode(pixels))


def test_training_from_stored_embeddings_skips_the_image_tower(subsets, caption_models, tmp_path) -> None:
    from curate.models.builders import build_bert
    from curate.pipelines.embed import run_embed
    from curate.schemas.config.flow import EmbedConfig, EncoderConfig
    from tests.captioner.scenes_subset import CAPTION_WORDS

    text = build_bert(tmp_path / "bert", words=CAPTION_WORDS)
    encoders = EncoderConfig(image_model=str(caption_models[0]), text_model=str(text), device="cpu")
    run_embed(EmbedConfig(inputs=(subsets[0],), out=tmp_path / "run", encoders=encoders, workers=0, limit=40), quiet=True)
    config = train_config(subsets[0], tmp_path / "model", caption_models, from_embeddings=tmp_path / "run",
                          image_model="unused/when-from-embeddings", epochs=1)
    summary = run_caption_train(config, quiet=True)
    assert summary.train_pairs + summary.val_pairs == 80 and summary.skipped == 520  # 40 embedded per shard
    card = read_card(CaptionerLayout(tmp_path / "model").best)
    assert card.image_model == str(caption_models[0]) and card.image_dim == 128 and not card.image_finetuned


def test_fine_tuning_the_image_tower_saves_the_tuned_tower(subsets, caption_models, tmp_path) -> None:
    from safetensors.torch import load_file

    config = train_config(subsets[0], tmp_path / "model", caption_models, finetune_image=True, limit=40, epochs=1)
    run_caption_train(config, quiet=True)
    best = CaptionerLayout(tmp_path / "model").best
    card = read_card(best)
    assert card.image_finetuned and card.image_model == str(caption_models[0])
    tuned = load_file(str(best / "image" / "model.safetensors"))
    start = load_file(str(caption_models[0] / "model.safetensors"))
    assert any(not torch.equal(tuned[name], start[name]) for name in start if name in tuned)
    model, _, image = load_checkpoint(tmp_path / "model", device=torch.device("cpu"))
    assert image == str(best / "image")
