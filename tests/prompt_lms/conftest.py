"""Fixtures for the prompt models: a prepared synthetic corpus, tiny models, trained once per session.

Torch runs single-threaded here: the tiny models gain nothing from threads, and on a busy
machine thread contention costs more than it saves.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from curate.prompt_lms.builders import build_gpt2, build_t5
from curate.prompt_lms.config import (
    ConceptTrainConfig,
    PromptsPrepareConfig,
    PromptTags,
    UpsampleTrainConfig,
)
from curate.prompt_lms.prepare import run_prepare
from curate.prompt_lms.train import run_train
from curate.synthetic.prompt_corpus import corpus_words, synthetic_prompts

TAGS = PromptTags()
PREFIX_WORDS = UpsampleTrainConfig().prefix.replace(":", " : ").split()
CORPUS_SIZE = 240


@pytest.fixture(scope="session", autouse=True)
def single_thread() -> None:
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The synthetic corpus, cleaned, tagged and split (10% validation, 10% test)."""
    folder = tmp_path_factory.mktemp("prompts")
    pq.write_table(pa.table({"prompt": synthetic_prompts(CORPUS_SIZE, seed=1)}), folder / "prompts.parquet")
    config = PromptsPrepareConfig(inputs=(folder / "prompts.parquet",), out=folder / "data",
                                  validation_fraction=0.1, test_fraction=0.1)
    run_prepare(config)
    return folder / "data"


@pytest.fixture(scope="session")
def tiny_gpt2(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_gpt2(tmp_path_factory.mktemp("gpt2"), words=corpus_words(), tags=[TAGS.start, TAGS.end])


@pytest.fixture(scope="session")
def tiny_t5(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_t5(tmp_path_factory.mktemp("t5"), words=corpus_words() + PREFIX_WORDS)


def concept_config(data: Path, out: Path, base: Path, **overrides: object) -> ConceptTrainConfig:
    """Settings that learn the tiny corpus in a few seconds."""
    settings = dict(data=(data,), out=out, base=str(base), epochs=3, batch_size=16, grad_accum=1, lr=3e-3,
                    trainable_layers=None, device="cpu", log_every=2)
    return ConceptTrainConfig(**{**settings, **overrides})


def upsample_config(data: Path, out: Path, base: Path, **overrides: object) -> UpsampleTrainConfig:
    settings = dict(data=(data,), out=out, base=str(base), epochs=4, batch_size=8, grad_accum=1, lr=4e-3,
                    device="cpu", eval_samples=2, log_every=2)
    return UpsampleTrainConfig(**{**settings, **overrides})


@pytest.fixture(scope="session")
def concept_model(tmp_path_factory: pytest.TempPathFactory, prepared: Path, tiny_gpt2: Path) -> Path:
    out = tmp_path_factory.mktemp("concept") / "model"
    run_train(concept_config(prepared, out, tiny_gpt2))
    return out


@pytest.fixture(scope="session")
def upsample_model(tmp_path_factory: pytest.TempPathFactory, prepared: Path, tiny_t5: Path) -> Path:
    out = tmp_path_factory.mktemp("upsample") / "model"
    run_train(upsample_config(prepared, out, tiny_t5))
    return out
