"""The index, search and dedup commands: bad input gets one line and exit code 2."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from curate.cli.app import app


@pytest.fixture()
def empty_run(tmp_path):
    (tmp_path / "run" / "embeddings").mkdir(parents=True)
    return tmp_path / "run"


@pytest.mark.parametrize(
    "args, says",
    [
        (["search", "{run}", "--text", "a red circle"], "has no index"),
        (["search", "{run}"], "exactly one query"),
        (["search", "{run}", "--text", "x", "--image", "{run}/q.png"], "exactly one query"),
        (["search", "{tmp}/nowhere", "--text", "x"], "does not exist"),
        (["dedup", "{run}"], "has no index"),
        (["dedup", "{run}", "--threshold", "1.5"], "--threshold"),
        (["index", "{run}", "--projection", "{tmp}/no-proj"], "has no embeddings"),
        (["index", "{tmp}/nowhere", "--projection", "{tmp}/no-proj"], "does not exist"),
        (["index", "{run}", "--projection", "{tmp}/no-proj", "--max-index-memory", "lots"], "--max-index-memory"),
        (["index", "{run}", "--projection", "{tmp}/no-proj", "--index-type", "lsh"], "known: auto, flat"),
        (["filter", "{run}", "--out", "{tmp}/subset", "--dedup"], "error:"),
    ],
)
def test_bad_input_gets_one_line_and_exit_2(args, says, empty_run, tmp_path):
    filled = [a.format(run=empty_run, tmp=tmp_path) for a in args]
    result = CliRunner().invoke(app, filled)
    assert result.exit_code == 2, (result.output, result.exception)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and says in lines[0], result.stderr


def test_index_without_projection_says_to_train(synthetic_run, tmp_path):
    result = CliRunner().invoke(app, ["index", str(synthetic_run.run), "--projection", str(tmp_path / "none")])
    assert result.exit_code == 2 and "curate train" in result.stderr
