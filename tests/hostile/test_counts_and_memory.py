"""Item 6: counts that add up and memory that stays bounded whatever the data holds: a refused
zip bomb is one error, a 10 MiB caption is never tokenised whole and its subset reads back,
and batches of huge images are closed by bytes, not only by count."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from curate.io import safety
from curate.io.formats.detect import find_shards, reader_for
from curate.models.text_encoder import CHARS_PER_TOKEN, TextEncoder
from curate.pipelines import embed as embed_module
from curate.pipelines.embed import run_embed
from curate.runtime.pool import OrderedPool
from curate.schemas.config.flow import EmbedConfig
from curate.schemas.sample import ErrorKind, Sample, SampleError
from tests.fixtures import image_bytes, read_all, wds_members, write_tar, write_zip
from tests.hostile.conftest import invoke
from tests.pipelines.fake_scores import score_shards

HUGE = ("a red circle on a blue background " * 310_000)[: 10 * 1024 * 1024]  # 10 MiB of words


def bomb_part(folder: Path) -> Path:
    """A DiffusionDB part: one image over the (test-lowered) size cap, one good one, both prompted."""
    folder.mkdir(parents=True, exist_ok=True)
    prompts = {"a.png": {"p": "a bomb", "se": 1}, "b.png": {"p": "a red circle", "se": 2}}
    return write_zip(folder / "part-000001.zip", [("a.png", b"x" * 5000), ("b.png", image_bytes(1)),
                                                  ("part-000001.json", json.dumps(prompts).encode())])


def test_a_refused_zip_bomb_is_one_error_not_two(tmp_path, monkeypatch, tiny_encoders):
    monkeypatch.setattr(safety, "MAX_MEMBER_BYTES", 4000)
    records = read_all(bomb_part(tmp_path / "shards"), "diffusiondb")
    kinds = sorted((type(r).__name__, getattr(r, "error", None)) for r in records)
    assert kinds == [("Sample", None), ("SampleError", ErrorKind.DECOMPRESSION_BOMB)], records

    outcome = run_embed(EmbedConfig(inputs=(tmp_path / "shards",), out=tmp_path / "run", encoders=tiny_encoders,
                                    workers=0), quiet=True)
    rows = pq.read_metadata(tmp_path / "run/embeddings/part-000001.parquet").num_rows
    errors = pq.read_table(tmp_path / "run/errors/part-000001.parquet").column("error").to_pylist()
    assert (rows, errors) == (1, [ErrorKind.DECOMPRESSION_BOMB])
    assert outcome.pairs + sum(outcome.errors.values()) == 2, "2 in: 1 embedded + 1 error, never 3"


def test_a_long_caption_is_cut_before_tokenising_with_the_same_tokens(tiny_encoders):
    encoder = TextEncoder(tiny_encoders.text_model, device=__import__("torch").device("cpu"), max_tokens=77)
    long = HUGE[:300_000]  # long enough to compare with a whole tokenisation, short enough to do one
    whole = encoder.tokenizer([long], truncation=True, max_length=77, return_tensors="pt")["input_ids"]
    assert encoder.tokenize([long])["input_ids"].tolist() == whole.tolist()
    assert (encoder.encode([HUGE]) == encoder.encode([HUGE[: 77 * CHARS_PER_TOKEN]])).all()


def test_a_10_mib_caption_embeds_without_being_tokenised_whole(tmp_path, monkeypatch, tiny_encoders):
    from transformers.tokenization_utils_base import PreTrainedTokenizerBase

    seen: list[int] = []
    call = PreTrainedTokenizerBase.__call__

    def recording(self, text=None, *args, **kwargs):
        seen.extend(len(t) for t in (text if isinstance(text, list) else [text]) if isinstance(t, str))
        return call(self, text, *args, **kwargs)

    monkeypatch.setattr(PreTrainedTokenizerBase, "__call__", recording)
    shard = long_caption_shard(tmp_path / "shards")
    outcome = run_embed(EmbedConfig(inputs=(shard,), out=tmp_path / "run", encoders=tiny_encoders, workers=0),
                        quiet=True)
    assert outcome.pairs == 5
    assert seen and max(seen) <= 77 * CHARS_PER_TOKEN < len(HUGE)
    texts = pq.read_table(tmp_path / "run/embeddings/long.parquet", columns=["text"]).column("text").to_pylist()
    assert HUGE in texts, "the caption itself is kept whole; only what the model reads is cut"


def long_caption_shard(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    members = [m for i in range(5) for m in wds_members(i, caption=HUGE.encode() if i == 2 else None)]
    return write_tar(folder / "long.tar", members)


@pytest.mark.parametrize("fmt", ["imagefolder", "webdataset", "parquet"])
def test_a_subset_with_a_10_mib_caption_reads_back_whole(tmp_path, fmt):
    """The issue's case: the image-folder subset read back 0 of 5 pairs (csv's 128 KiB field limit)."""
    run = score_shards([long_caption_shard(tmp_path / "shards")], tmp_path / "run")
    result = invoke("filter", run.root, "--out", tmp_path / "subset", "--format", fmt, "-q")
    assert result.exit_code == 0, result.output
    records = [r for s in find_shards([tmp_path / "subset"]) for r in reader_for(s)]
    assert all(isinstance(r, Sample) for r in records), [r for r in records if isinstance(r, SampleError)]
    assert len(records) == 5 and sum(r.text == HUGE for r in records) == 1


def test_batches_of_huge_images_close_by_bytes(tmp_path, monkeypatch, tiny_encoders):
    """6 images of ~300 KB at --batch-size 6 and --max-batch-bytes 700KB: batches of 2, all embedded."""
    folder = tmp_path / "shards"
    folder.mkdir()
    padded = [(f"{i:05d}.png", image_bytes(i) + b"\0" * 300_000) for i in range(6)]  # PNG readers stop at IEND
    write_tar(folder / "big.tar", [m for name, data in padded for m in ((name, data), (name[:-4] + ".txt", b"x"))])
    shipped: list[int] = []
    images_of = embed_module.images_of
    monkeypatch.setattr(embed_module, "images_of", lambda batch: shipped.append(sum(map(len, images_of(batch))))
                        or images_of(batch))
    outcome = run_embed(EmbedConfig(inputs=(folder,), out=tmp_path / "run", encoders=tiny_encoders, workers=0,
                                    batch_size=6, max_batch_bytes="700KB"), quiet=True)
    assert outcome.pairs == 6
    assert len(shipped) == 3 and max(shipped) <= 700_000


def test_the_decode_look_ahead_is_bounded_by_bytes():
    """At most `max_in_flight_bytes` of payload queued, however many tasks the count allows."""
    pulled = 0

    def items():
        nonlocal pulled
        for _ in range(12):
            pulled += 1
            yield b"x" * 4

    ahead = []
    with OrderedPool(1, max_in_flight=100, max_in_flight_bytes=10) as pool:
        for received, (_, n) in enumerate(pool.map(len, items(), size=len), start=1):
            assert n == 4
            ahead.append(pulled - received)
    assert max(ahead) <= 2, ahead  # 2 x 4 bytes fit in 10; the 3rd waits for the 1st to finish
