"""`curate embed` end to end on every input format with tiny encoders."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

from curate.errors import CurateError
from curate.pipelines.embed import run_embed
from curate.schemas.config.flow import EmbedConfig, EncoderConfig
from curate.schemas.layout import RunLayout
from curate.schemas.tables import read_embeddings_info
from curate.synthetic.scenes import render_scene


def embed(inputs: list[Path], out: Path, encoders: EncoderConfig, **kwargs) -> RunLayout:
    config = EmbedConfig(inputs=tuple(inputs), out=out, encoders=encoders, batch_size=5, workers=0, **kwargs)
    run_embed(config, quiet=True)
    return RunLayout(out)


def vectors(table, column: str) -> np.ndarray:
    return np.stack(table.column(column).to_numpy(zero_copy_only=False)).astype(np.float32)


def test_every_format_embeds_every_sample(sample_shards, tiny_encoders, tmp_path):
    layout = embed(sample_shards, tmp_path / "run", tiny_encoders)
    files = layout.shard_files("embeddings")
    assert len(files) == len(sample_shards) == 4
    for path in files:
        table = pq.read_table(path)
        errors = pq.read_table(layout.errors(path.stem))
        assert table.num_rows + errors.num_rows == 8, path.stem
        assert errors.num_rows == 0
        assert table.schema.field("image_emb").type.value_type.bit_width == 16
        assert table.schema.field("image_emb").type.list_size == 32
        assert table.schema.field("text_emb").type.list_size == 32
        keys = table.column("key").to_pylist()
        assert len(set(keys)) == len(keys)
        assert all(k.startswith(path.stem + "/") for k in keys)
        info = read_embeddings_info(table.schema)
        assert info.image_encoder.dim == 32 and info.text_encoder.settings["pooling"] == "mean"
        assert Path(info.source).exists()


def test_diffusiondb_meta_travels_with_the_vectors(sample_shards, tiny_encoders, tmp_path):
    part = next(p for p in sample_shards if p.name.startswith("part-"))
    layout = embed([part], tmp_path / "run", tiny_encoders)
    table = pq.read_table(layout.embeddings("part-000001"))
    assert {"seed", "cfg", "step", "sampler", "width", "user_name"} <= set(table.column_names)
    assert None not in table.column("seed").to_pylist()


def test_keys_and_vectors_are_stable_across_runs_and_worker_counts(sample_shards, tiny_encoders, tmp_path):
    tar = next(p for p in sample_shards if p.suffix == ".tar")
    first = pq.read_table(embed([tar], tmp_path / "a", tiny_encoders).embeddings(tar.stem))
    config = EmbedConfig(inputs=(tar,), out=tmp_path / "b", encoders=tiny_encoders, batch_size=3, workers=1)
    run_embed(config, quiet=True)
    second = pq.read_table(RunLayout(tmp_path / "b").embeddings(tar.stem))
    assert first.column("key").to_pylist() == second.column("key").to_pylist()
    np.testing.assert_allclose(vectors(first, "image_emb"), vectors(second, "image_emb"), atol=2e-3)
    np.testing.assert_allclose(vectors(first, "text_emb"), vectors(second, "text_emb"), atol=2e-3)


def test_same_image_same_vector_whatever_the_format(same_scenes, tiny_encoders, tmp_path):
    layout = embed(list(same_scenes.values()), tmp_path / "run", tiny_encoders)
    by_format = {}
    for fmt, path in same_scenes.items():
        shard_id = path.name.split(".")[0]
        table = pq.read_table(layout.embeddings(shard_id)).sort_by("key")
        members = [k.split("/", 1)[1].split(".")[0] for k in table.column("key").to_pylist()]
        by_format[fmt] = (members, vectors(table, "image_emb"), vectors(table, "text_emb"))
    reference = by_format.pop("diffusiondb")
    assert len(reference[0]) == 6
    for fmt, (members, image, text) in by_format.items():
        assert members == reference[0], fmt
        np.testing.assert_allclose(image, reference[1], atol=2e-3, err_msg=fmt)
        np.testing.assert_allclose(text, reference[2], atol=2e-3, err_msg=fmt)


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def broken_tar(path: Path) -> dict[str, str]:
    """A webdataset tar with one good sample and one of each kind of broken sample."""
    good = render_scene(1).image
    bomb = _png(Image.new("1", (9000, 9000)))  # 81 Mpx: over the default pixel limit
    members = {
        "good.png": good, "good.txt": b"a red circle",
        "garbage.png": b"this is not an image", "garbage.txt": b"a caption",
        "cut.png": good[: len(good) // 2], "cut.txt": b"half an image",
        "bomb.png": bomb, "bomb.txt": b"a huge picture",
        "blank.png": good, "blank.txt": b"   ",
        "nocaption.png": good,
        "latin1.png": good, "latin1.txt": "caf\xe9".encode("latin-1"),
    }
    with tarfile.open(path, "w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return {
        "garbage": "undecodable_image", "cut": "truncated_image", "bomb": "decompression_bomb",
        "blank": "empty_caption", "nocaption": "missing_caption", "latin1": "non_utf8_text",
    }


def test_broken_samples_land_in_the_error_table(tiny_encoders, tmp_path):
    expected = broken_tar(tmp_path / "broken.tar")
    layout = embed([tmp_path / "broken.tar"], tmp_path / "run", tiny_encoders)
    kept = pq.read_table(layout.embeddings("broken")).column("key").to_pylist()
    errors = pq.read_table(layout.errors("broken")).to_pylist()
    assert kept == ["broken/good"]
    got = {row["key"].split("/", 1)[1]: row["error"] for row in errors}
    assert got == expected
    assert all(row["message"] for row in errors)


def test_rerun_skips_done_shards_and_overwrite_redoes_them(sample_shards, tiny_encoders, tmp_path):
    tar = next(p for p in sample_shards if p.suffix == ".tar")
    layout = embed([tar], tmp_path / "run", tiny_encoders)
    before = layout.embeddings(tar.stem).stat().st_mtime_ns
    embed([tar], tmp_path / "run", tiny_encoders)
    assert layout.embeddings(tar.stem).stat().st_mtime_ns == before
    embed([tar], tmp_path / "run", tiny_encoders, overwrite=True)
    assert layout.embeddings(tar.stem).stat().st_mtime_ns != before


def test_limit_caps_each_shard_and_a_later_full_run_redoes_it(sample_shards, tiny_encoders, tmp_path):
    tar = next(p for p in sample_shards if p.suffix == ".tar")
    layout = embed([tar], tmp_path / "run", tiny_encoders, limit=3)
    assert pq.read_metadata(layout.embeddings(tar.stem)).num_rows == 3
    embed([tar], tmp_path / "run", tiny_encoders)
    assert pq.read_metadata(layout.embeddings(tar.stem)).num_rows == 8


def test_other_encoders_are_refused_in_an_existing_run(sample_shards, tiny_encoders, tmp_path):
    tar = next(p for p in sample_shards if p.suffix == ".tar")
    embed([tar], tmp_path / "run", tiny_encoders)
    other = EncoderConfig(image_model=tiny_encoders.image_model, text_model=tiny_encoders.text_model,
                          text_pooling="cls", device="cpu")
    with pytest.raises(CurateError, match="--overwrite"):
        embed([tar], tmp_path / "run", other)


def test_empty_shard_gives_empty_outputs_not_a_crash(tiny_encoders, tmp_path):
    with tarfile.open(tmp_path / "empty.tar", "w"):
        pass
    layout = embed([tmp_path / "empty.tar"], tmp_path / "run", tiny_encoders)
    assert pq.read_metadata(layout.embeddings("empty")).num_rows == 0
    assert pq.read_metadata(layout.errors("empty")).num_rows == 0
