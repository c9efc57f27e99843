"""The tiny models tests build are what the tests assume: words the tokenizer really knows."""

from __future__ import annotations

import numpy as np
import torch
from transformers import AutoTokenizer

from curate.models.text_encoder import TextEncoder
from tests.tiny_models import scene_words, tiny_text_model


def test_tiny_bert_tokenizer_keeps_every_scene_word(tmp_path):
    tokenizer = AutoTokenizer.from_pretrained(tiny_text_model(tmp_path / "text"))
    assert tokenizer.tokenize("a large red square") == ["a", "large", "red", "square"]
    unknown = [w for w in scene_words() if tokenizer.tokenize(w) != [w.lower()]]
    assert unknown == []
    assert tokenizer.tokenize("zeppelin") == ["[UNK]"]  # a word outside the vocabulary is still unknown


def test_tiny_bert_vectors_depend_on_the_words_not_only_the_length(tmp_path):
    encoder = TextEncoder(str(tiny_text_model(tmp_path / "text")), device=torch.device("cpu"))
    red, blue, red_again = encoder.encode(["a large red square", "a large blue square", "a large red square"])
    np.testing.assert_allclose(red, red_again, atol=1e-6)
    assert not np.allclose(red, blue, atol=1e-3)
