"""Shared fixtures: sample shards of every format, made once per test session."""

from __future__ import annotations

from pathlib import Path

import pytest

import curate.io.formats.registry  # noqa: F401  (fills the format registries)
from curate.synthetic.shards import write_same_scenes, write_sample_shards


@pytest.fixture(scope="session")
def sample_shards(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """One small shard per input format (8 rendered scenes each, distinct keys)."""
    return write_sample_shards(tmp_path_factory.mktemp("sample-shards"), per_shard=8)


@pytest.fixture(scope="session")
def same_scenes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The same 6 scenes, byte-identical images, in every format."""
    return write_same_scenes(tmp_path_factory.mktemp("same-scenes"), count=6)


@pytest.fixture(scope="session")
def img2dataset_output(tmp_path_factory: pytest.TempPathFactory):
    """img2dataset's tar and Parquet outputs of one URL list (5 served scenes, 2 URLs that 404)."""
    pytest.importorskip("img2dataset")
    from tests.producers import img2dataset_download

    return img2dataset_download(tmp_path_factory.mktemp("img2dataset"))
