"""Hostile inputs: a small scored run whose captions, keys and shard names are written to
break things (markup, glob characters, SQL), and helpers that assert the safe outcome."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from curate.cli.app import app
from curate.schemas.layout import RunLayout
from tests.cli_checks import one_line_error
from tests.fixtures import wds_members, write_tar
from tests.pipelines.conftest import tiny_encoders, tiny_models  # noqa: F401  (models for embed tests)
from tests.pipelines.fake_scores import score_shards

MARKUP_CAPTION = b"[/x] a [bold]red[/bold] circle $\\undefinedcmd$"
GLOB_SHARD = "0*.tar"  # a shard whose name is a glob matching its neighbour
MATH_SHARD = "m$\\undefinedcmd$.tar"  # matplotlib would parse this as mathtext


def hostile_shards(folder: Path) -> list[Path]:
    """Three webdataset shards: `00042.tar` (4 pairs), `0*.tar` (2) and a mathtext name (2);
    one caption in each is markup."""
    folder.mkdir(parents=True, exist_ok=True)
    sizes = {"00042.tar": 4, GLOB_SHARD: 2, MATH_SHARD: 2}
    shards, start = [], 0
    for name, count in sizes.items():
        members = []
        for i in range(start, start + count):
            members += wds_members(i, caption=MARKUP_CAPTION if i == start else None)
        shards.append(write_tar(folder / name, members))
        start += count
    return shards


@pytest.fixture(scope="session")
def hostile_run(tmp_path_factory: pytest.TempPathFactory) -> RunLayout:
    """The hostile shards scored straight from their readers (8 pairs in 3 scores files)."""
    root = tmp_path_factory.mktemp("hostile")
    return score_shards(hostile_shards(root / "shards"), root / "run")


@pytest.fixture(scope="session")
def scored_elsewhere(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Another scored run: what a query over `hostile_run` must not reach."""
    root = tmp_path_factory.mktemp("elsewhere")
    return score_shards(hostile_shards(root / "shards"), root / "run").root


def invoke(*args: str) -> Result:
    """`curate ARGS` in-process."""
    return CliRunner().invoke(app, [str(a) for a in args])


def assert_one_line_error(result: Result, *says: str) -> str:
    """Exit 2, no traceback, exactly one `error:` line on stderr that holds each of `says`."""
    assert "Traceback" not in result.output
    return one_line_error(result, *says)


def files_under(folder: Path) -> set[Path]:
    return {p for p in folder.rglob("*")} if folder.exists() else set()
