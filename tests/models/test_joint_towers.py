"""CLIP and SigLIP towers built offline: tokenizers that know words, the checkpoints' own
preprocessing, and each tower called on its own half of the model."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image
from transformers import AutoImageProcessor, AutoTokenizer

from curate.errors import CurateError
from curate.models.encoders import load_encoders
from curate.models.image_encoder import ImageEncoder
from curate.models.preprocess import decode_image
from curate.models.text_encoder import TextEncoder
from curate.schemas.config.flow import EncoderConfig
from curate.synthetic.scenes import render_scene
from tests.tiny_models import scene_words, tiny_clip_model, tiny_siglip_model

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    root = tmp_path_factory.mktemp("joint-models")
    return {"clip": tiny_clip_model(root / "clip"), "siglip": tiny_siglip_model(root / "siglip")}


def test_tiny_clip_tokenizer_spells_every_scene_word_as_one_token(checkpoints):
    tokenizer = AutoTokenizer.from_pretrained(checkpoints["clip"])
    assert type(tokenizer).__name__ == "CLIPTokenizer"
    assert tokenizer.tokenize("a large red square") == ["a</w>", "large</w>", "red</w>", "square</w>"]
    assert [w for w in scene_words() if tokenizer.tokenize(w) != [w.lower() + "</w>"]] == []
    ids = tokenizer("a red circle")["input_ids"]
    assert ids[0] == tokenizer.bos_token_id and ids[-1] == tokenizer.eos_token_id and tokenizer.unk_token_id not in ids[1:-1]
    assert len(tokenizer.tokenize("zeppelin")) > 1  # a word it never saw is spelled in pieces


def test_tiny_siglip_tokenizer_knows_every_scene_word_and_appends_eos(checkpoints):
    tokenizer = AutoTokenizer.from_pretrained(checkpoints["siglip"])
    assert tokenizer.tokenize("A large red square") == ["a", "large", "red", "square"]
    assert [w for w in scene_words() if tokenizer.tokenize(w) != [w.lower()]] == []
    assert tokenizer.tokenize("zeppelin") == ["<unk>"]
    padded = tokenizer(["a red circle"], padding="max_length", max_length=64)
    assert list(padded) == ["input_ids"] and len(padded["input_ids"][0]) == 64
    assert padded["input_ids"][0][3] == tokenizer.eos_token_id


@pytest.mark.parametrize("family", ["clip", "siglip"])
def test_text_vectors_depend_on_the_words_not_only_the_length(family, checkpoints):
    encoder = TextEncoder(str(checkpoints[family]), device=CPU)
    red, blue, red_again = encoder.encode(["a large red square", "a large blue square", "a large red square"])
    np.testing.assert_allclose(red, red_again, atol=1e-6)
    assert not np.allclose(red, blue, atol=1e-3)


def non_square_png() -> bytes:
    """A 96x64 scene: the shortest edge and the crop differ, so resize and crop both matter."""
    image = Image.open(io.BytesIO(render_scene(3).image)).convert("RGB").crop((0, 16, 96, 80))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.mark.parametrize("family, square", [("clip", False), ("siglip", True)])
def test_each_tower_preprocesses_as_its_own_image_processor(family, square, checkpoints):
    encoder = ImageEncoder(str(checkpoints[family]), device=CPU)
    prep = encoder.preprocess
    assert (prep.crop, prep.square_resize, prep.resample) == (32, square, 3)  # bicubic either way here
    expected_mean = (0.48145466, 0.4578275, 0.40821073) if family == "clip" else (0.5, 0.5, 0.5)
    np.testing.assert_allclose(prep.mean, expected_mean)
    data = non_square_png()
    ours = encoder.to_tensor(decode_image(data, prep)[None].copy()).numpy()
    processor = AutoImageProcessor.from_pretrained(checkpoints[family])
    theirs = processor(images=[Image.open(io.BytesIO(data)).convert("RGB")], return_tensors="pt")["pixel_values"].numpy()
    assert ours.shape == theirs.shape == (1, 3, 32, 32)
    np.testing.assert_allclose(ours, theirs, atol=1e-5)


def test_a_clip_id_as_image_model_gives_the_projected_image_tower(checkpoints):
    encoder = ImageEncoder(str(checkpoints["clip"]), device=CPU)
    assert encoder.two_tower and encoder.dim == 16  # the joint space, not the 32-wide vision hidden state
    pixels = np.stack([decode_image(render_scene(i).image, encoder.preprocess) for i in range(3)])
    with torch.inference_mode():
        out = encoder.model.get_image_features(pixel_values=encoder.to_tensor(pixels))
    by_hand = (out if isinstance(out, torch.Tensor) else out.pooler_output).numpy()
    np.testing.assert_allclose(encoder.encode(pixels), by_hand, atol=1e-6)


def test_model_loads_one_checkpoint_for_both_towers(checkpoints):
    encoders = load_encoders(EncoderConfig(model=str(checkpoints["siglip"]), device="cpu"))
    assert encoders.image.model is encoders.text.model
    assert encoders.image.info.joint_space == encoders.text.info.joint_space
    assert encoders.text.info.joint_space.logit_bias == pytest.approx(-1.0)
    assert encoders.text.tokenize(["a red circle"])["input_ids"].shape == (1, 64)  # padded as SigLIP was trained


def test_model_and_a_tower_option_cannot_be_given_together():
    with pytest.raises(CurateError, match="--model sets both towers"):
        EncoderConfig(model="openai/clip-vit-base-patch32", text_model="prajjwal1/bert-tiny").validate()
    EncoderConfig(model="openai/clip-vit-base-patch32").validate()
    assert EncoderConfig(model="m").image_checkpoint == EncoderConfig(model="m").text_checkpoint == "m"


def test_a_missing_tokenizer_library_is_one_sentence(tmp_path, monkeypatch):
    from curate.models import loading

    def needs_sentencepiece(*_args, **_kwargs):
        raise ImportError("\nSiglipTokenizer requires the SentencePiece library but it was not found in your environment.")

    with pytest.raises(CurateError, match="SentencePiece library") as caught:
        loading.load_pretrained(needs_sentencepiece, "google/siglip-base-patch16-224", what="tokenizer",
                                option="--text-model")
    assert "\n" not in str(caught.value) and "install" in str(caught.value)
