"""CLIP and SigLIP towers end to end: stored vectors are the model's own, `--projection native`
scores are its own cosine (and SigLIP's own match probability), and every later step takes
such a run as it takes a trained projection's."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from curate.cli.app import app
from curate.errors import CurateError
from curate.io.embeddings import vectors
from curate.io.formats.detect import find_shards, reader_for
from curate.pipelines.embed import run_embed
from curate.pipelines.score import run_score
from curate.schemas.config.flow import EmbedConfig, EncoderConfig, ScoreConfig
from curate.schemas.layout import RunLayout
from curate.schemas.projection import CARD_FILE, MATCH_PROBABILITY, ProjectionCard
from curate.schemas.tables import read_embeddings_info
from tests.pipelines.joint_runs import JointRun, cli
from tests.pipelines.scene_runs import one_thread


def shard_table(run: Path, shard: str = "00000") -> tuple[list[str], list[str], np.ndarray, np.ndarray]:
    table = pq.read_table(RunLayout(run).embeddings(shard))
    image = vectors(table.column("image_emb")).astype(np.float32)
    text = vectors(table.column("text_emb")).astype(np.float32)
    return table.column("key").to_pylist(), table.column("text").to_pylist(), image, text


def images_of(shards: Path, keys: list[str]) -> list[Image.Image]:
    """The shard's own image bytes for `keys`, opened as PIL images (what a processor takes)."""
    import io

    found = {s.key: s.image for shard in find_shards([shards]) for s in reader_for(shard)}
    return [Image.open(io.BytesIO(found[key])).convert("RGB") for key in keys]


def features(out: object) -> torch.Tensor:
    """A `get_*_features` result: a tensor in older transformers, an output with the projected `pooler_output` now."""
    return out if isinstance(out, torch.Tensor) else out.pooler_output  # type: ignore[union-attr]


def model_inputs(model_dir: Path, texts: list[str], images: list[Image.Image], *, padding: str) -> dict:
    """The checkpoint's own processor and tokenizer, called as their model cards show."""
    from transformers import AutoImageProcessor, AutoTokenizer

    tokens = AutoTokenizer.from_pretrained(model_dir)(texts, padding=padding, return_tensors="pt")
    pixels = AutoImageProcessor.from_pretrained(model_dir)(images=images, return_tensors="pt")["pixel_values"]
    return {**tokens, "pixel_values": pixels}


@pytest.mark.parametrize("family, padding", [("clip", "longest"), ("siglip", "max_length")])
def test_stored_vectors_equal_the_models_own_features(family, padding, request):
    from transformers import AutoModel

    joint: JointRun = request.getfixturevalue(f"{family}_run")
    keys, texts, image, text = shard_table(joint.run)
    inputs = model_inputs(joint.model, texts, images_of(joint.shards, keys), padding=padding)
    model = AutoModel.from_pretrained(joint.model).eval()
    with torch.inference_mode():
        by_hand_image = features(model.get_image_features(pixel_values=inputs["pixel_values"])).numpy()
        text_inputs = {k: v for k, v in inputs.items() if k in ("input_ids", "attention_mask")}
        by_hand_text = features(model.get_text_features(**text_inputs)).numpy()
    assert image.shape == by_hand_image.shape and text.shape == by_hand_text.shape
    np.testing.assert_allclose(image, by_hand_image, rtol=2e-3, atol=2e-3)  # stored as float16
    np.testing.assert_allclose(text, by_hand_text, rtol=2e-3, atol=2e-3)
    assert not np.allclose(text[0], text[1], atol=1e-2)  # captions differ, so do their vectors


@pytest.mark.parametrize("family, dim", [("clip", 16), ("siglip", 32)])
def test_metadata_records_model_tower_and_joint_space(family, dim, request):
    joint: JointRun = request.getfixturevalue(f"{family}_run")
    info = read_embeddings_info(pq.read_schema(RunLayout(joint.run).embeddings("00000")))
    for encoder, tower in ((info.image_encoder, "image_embeds"), (info.text_encoder, "text_embeds")):
        assert encoder.model == str(joint.model) and encoder.dim == dim
        assert encoder.settings["tower"] == tower
        assert encoder.joint_space is not None and encoder.joint_space.model_type == family
        assert encoder.joint_space.dim == dim
    assert info.text_encoder.settings["context"] == {"clip": 77, "siglip": 64}[family]
    assert info.image_encoder.settings["preprocess"]["resample"] == "bicubic"


@pytest.mark.parametrize("family", ["clip", "siglip"])
def test_native_scores_are_the_cosine_of_the_stored_vectors(family, request):
    joint: JointRun = request.getfixturevalue(f"{family}_run")
    for shard in ("00000", "00001"):
        keys, _, image, text = shard_table(joint.run, shard)
        scores = pq.read_table(RunLayout(joint.run).scores(shard))
        assert scores.column("key").to_pylist() == keys
        cosine = (image * text).sum(1) / (np.linalg.norm(image, axis=1) * np.linalg.norm(text, axis=1))
        np.testing.assert_allclose(scores.column("similarity").to_numpy(), cosine, atol=1e-5)
        assert (MATCH_PROBABILITY in scores.column_names) == (family == "siglip")


def test_siglip_match_probability_is_the_models_own_logit_through_a_sigmoid(siglip_run: JointRun):
    from transformers import AutoModel

    keys, texts, _, _ = shard_table(siglip_run.run)
    inputs = model_inputs(siglip_run.model, texts, images_of(siglip_run.shards, keys), padding="max_length")
    model = AutoModel.from_pretrained(siglip_run.model).eval()
    with torch.inference_mode():
        logits = model(**inputs).logits_per_image.diagonal()
    by_hand = torch.sigmoid(logits).numpy()
    stored = pq.read_table(RunLayout(siglip_run.run).scores("00000")).column(MATCH_PROBABILITY).to_numpy()
    assert by_hand.std() > 0.02  # spread out, so the comparison means something
    np.testing.assert_allclose(stored, by_hand, atol=3e-3)  # float16 vectors, a logit scale of 10
    np.testing.assert_allclose(np.log(stored / (1 - stored)), logits.numpy(), atol=0.05)


def test_the_native_card_names_the_encoders_and_is_stable(clip_run: JointRun):
    folder = RunLayout(clip_run.run).native_dir
    card = ProjectionCard.from_text((folder / CARD_FILE).read_text())
    assert card.loss == "native" and card.out_dim == 16 and card.data is None and card.metrics is None
    assert card.image_encoder.model == card.text_encoder.model == str(clip_run.model)
    info = json.loads(pq.read_schema(RunLayout(clip_run.run).scores("00000")).metadata[b"curate"])
    assert info["projection"] == card.fingerprint and Path(info["projection_dir"]) == folder.resolve()
    before = {p.name: p.stat().st_mtime_ns for p in RunLayout(clip_run.run).shard_files("scores")}
    cli("score", str(clip_run.run), "--projection", "native", "--out", str(clip_run.run), "--device", "cpu", "-q")
    assert {p.name: p.stat().st_mtime_ns for p in RunLayout(clip_run.run).shard_files("scores")} == before
    again = ProjectionCard.from_text((folder / CARD_FILE).read_text())
    assert again.fingerprint == card.fingerprint


def test_reembedding_with_the_same_model_skips_every_shard(clip_run: JointRun):
    config = EmbedConfig(inputs=(clip_run.shards,), out=clip_run.run, workers=0,
                         encoders=EncoderConfig(model=str(clip_run.model), device="cpu"))
    outcome = run_embed(config, quiet=True)
    assert [s.skipped for s in outcome.shards] == [True, True]


def test_native_is_refused_in_one_line_for_resnet_and_bert(scored_run, tmp_path):
    result = CliRunner().invoke(app, ["score", str(scored_run.root), "--projection", "native", "--out",
                                      str(tmp_path / "out"), "--device", "cpu"])
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and "share none" in lines[0], result.output
    assert "train" in lines[0]  # says what to do instead
    with pytest.raises(CurateError, match="share none"):
        run_score(ScoreConfig(inputs=(scored_run.root,), projection=Path("native"), out=tmp_path / "out2"), quiet=True)


def test_a_clip_id_given_to_one_option_picks_that_tower(clip_run: JointRun, tiny_models, tmp_path):
    encoders = EncoderConfig(image_model=str(clip_run.model), text_model=str(tiny_models[1]), device="cpu")
    run = tmp_path / "mixed"
    with one_thread():
        run_embed(EmbedConfig(inputs=(clip_run.shards,), out=run, encoders=encoders, workers=0), quiet=True)
    info = read_embeddings_info(pq.read_schema(RunLayout(run).embeddings("00000")))
    assert info.image_encoder.settings["tower"] == "image_embeds" and info.image_encoder.dim == 16
    assert info.text_encoder.joint_space is None and info.text_encoder.settings["pooling"] == "mean"
    np.testing.assert_allclose(shard_table(run)[2], shard_table(clip_run.run)[2], atol=1e-6)  # the same image tower
    with pytest.raises(CurateError, match="share none"):
        run_score(ScoreConfig(inputs=(run,), projection=Path("native"), out=run), quiet=True)


def test_model_and_a_tower_option_together_are_refused(png_shards, tmp_path):
    result = CliRunner().invoke(app, ["embed", str(png_shards), "--out", str(tmp_path / "r"), "--model", "some/clip",
                                      "--image-model", "other/resnet"])
    assert result.exit_code == 2 and "--model sets both towers" in result.output


def test_native_on_shards_without_embeddings_says_to_embed_first(png_shards, tmp_path):
    result = CliRunner().invoke(app, ["score", str(png_shards), "--projection", "native", "--out", str(tmp_path / "r")])
    assert result.exit_code == 2 and "curate embed" in result.output and "--model" in result.output
