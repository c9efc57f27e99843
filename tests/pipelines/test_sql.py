"""`curate sql`: answers equal pyarrow's over the same files, in every output format."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import subprocess
import sys
from collections import Counter

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from curate.cli.app import app
from curate.schemas.layout import RunLayout

runner = CliRunner()


def sql(run: RunLayout, query: str, *args: str) -> str:
    """stdout of `curate sql` run in-process; fails the test on a non-zero exit."""
    result = runner.invoke(app, ["sql", str(run.root), query, *args])
    assert result.exit_code == 0, (result.output, result.exception)
    return result.stdout


def sql_subprocess(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, COLUMNS="200")
    return subprocess.run([sys.executable, "-m", "curate.cli", "sql", *args], capture_output=True, text=True,
                          env=env, timeout=120)


def read_table(run: RunLayout, table: str, columns: list[str] | None = None) -> pa.Table:
    """The whole table straight from its files, the way the test checks DuckDB's answers."""
    return pa.concat_tables(
        [pq.read_table(p, columns=columns) for p in run.shard_files(table)], promote_options="permissive"
    )


def test_count_and_mean_match_pyarrow(scored_run):
    rows = list(csv.DictReader(io.StringIO(sql(scored_run, "SELECT count(*) AS n, avg(similarity) AS mean FROM scores",
                                                "--format", "csv"))))
    similarity = read_table(scored_run, "scores", ["similarity"]).column("similarity")
    assert len(rows) == 1
    assert int(rows[0]["n"]) == len(similarity) == 35
    assert float(rows[0]["mean"]) == pytest.approx(pc.mean(similarity.cast(pa.float64())).as_py(), rel=1e-9)


def test_group_by_shard_matches_pyarrow_per_file(scored_run):
    query = "SELECT split_part(key, '/', 1) AS shard, count(*) AS n, avg(similarity) AS mean FROM scores GROUP BY 1 ORDER BY 1"
    answer = {r["shard"]: r for r in json.loads(sql(scored_run, query, "--format", "json"))}
    expected = {p.stem: pq.read_table(p, columns=["similarity"]).column("similarity") for p in scored_run.shard_files("scores")}
    assert set(answer) == set(expected)
    for shard, values in expected.items():
        assert answer[shard]["n"] == len(values)
        assert answer[shard]["mean"] == pytest.approx(pc.mean(values.cast(pa.float64())).as_py(), rel=1e-9)


def test_meta_columns_of_different_formats_stack_by_name(scored_run):
    query = "SELECT sampler, count(*) AS n FROM scores WHERE sampler IS NOT NULL GROUP BY 1"
    answer = json.loads(sql(scored_run, query, "--format", "json"))
    samplers = pq.read_table(scored_run.scores("part-000001"), columns=["sampler"]).column("sampler").to_pylist()
    assert answer == [{"sampler": s, "n": n} for s, n in Counter(samplers).items()]


def test_errors_view_counts_by_kind(scored_run):
    answer = json.loads(sql(scored_run, "SELECT error, count(*) AS n FROM errors GROUP BY 1 ORDER BY 1", "--format", "json"))
    kinds = Counter(read_table(scored_run, "errors", ["error"]).column("error").to_pylist())
    assert {r["error"]: r["n"] for r in answer} == dict(kinds)
    assert kinds == {"undecodable_image": 1, "missing_caption": 1}


def test_parquet_output_holds_exactly_the_filtered_rows(scored_run, tmp_path):
    target = tmp_path / "low.parquet"
    sql(scored_run, "SELECT key, text, similarity FROM scores WHERE similarity < 0.1", "--format", "parquet",
        "--output", str(target))
    got = pq.read_table(target)
    scores = read_table(scored_run, "scores", ["key", "similarity"])
    expected = scores.filter(pc.less(scores.column("similarity"), 0.1)).column("key").to_pylist()
    assert sorted(got.column("key").to_pylist()) == sorted(expected) and expected
    assert got.column_names == ["key", "text", "similarity"]
    assert not list(tmp_path.glob(".*.tmp"))


def test_csv_to_stdout_parses_back_as_the_issue_shows(scored_run):
    result = sql_subprocess(str(scored_run.root), "SELECT key, text FROM scores WHERE similarity < 0.1", "--format", "csv")
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    scores = read_table(scored_run, "scores", ["key", "text", "similarity"]).to_pylist()
    assert {(r["key"], r["text"]) for r in rows} == {(r["key"], r["text"]) for r in scores if r["similarity"] < 0.1}


def test_vectors_are_hidden_unless_asked(scored_run):
    hidden = json.loads(sql(scored_run, "SELECT * FROM embeddings ORDER BY key LIMIT 2", "--format", "json"))
    assert "image_emb" not in hidden[0] and "text_emb" not in hidden[0] and "key" in hidden[0]
    shown = json.loads(sql(scored_run, "SELECT * FROM embeddings ORDER BY key LIMIT 2", "--format", "json", "--vectors"))
    first = pq.read_table(scored_run.shard_files("embeddings")[0], columns=["key", "image_emb"])
    assert len(shown[0]["image_emb"]) == first.schema.field("image_emb").type.list_size == 32
    result = runner.invoke(app, ["sql", str(scored_run.root), "SELECT image_emb FROM embeddings"])
    assert result.exit_code == 2 and "--vectors" in result.stderr


def test_terminal_table_caps_rows_and_says_how_many(scored_run):
    out = sql(scored_run, "SELECT key, similarity FROM scores ORDER BY similarity", "--max-rows", "5")
    assert "first 5 of 35 rows" in out
    assert out.count("/scene-") + out.count("broken-00001/") == 5


@pytest.mark.parametrize(
    "query, extra, says",
    [
        ("SELEC key FROM scores", [], "Parser Error"),
        ("SELECT no_such_column FROM scores", [], "no_such_column"),
        ("SELECT CAST(text AS INTEGER) FROM scores", [], "Conversion Error"),
        ("SELECT * FROM scores", ["--format", "parquet"], "--output"),
        ("SELECT * FROM scores", ["--format", "xml"], "known: csv, json, parquet, table"),
    ],
)
def test_bad_query_gets_one_line_and_exit_2(scored_run, query, extra, says):
    result = sql_subprocess(str(scored_run.root), query, *extra)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and says in lines[0], result.stderr


def test_a_table_the_run_lacks_is_named_with_the_views_it_has(scored_run, tmp_path):
    run = tmp_path / "unscored"
    for table in ("embeddings", "errors"):
        shutil.copytree(scored_run.table_dir(table), run / table)
    result = runner.invoke(app, ["sql", str(run), "SELECT count(*) FROM scores"])
    assert result.exit_code == 2
    assert "no scores/ files" in result.stderr and "curate score" in result.stderr
    assert "views in this run: embeddings, errors" in result.stderr
    assert "35" in sql(RunLayout(run), "SELECT count(*) FROM embeddings")


def test_missing_run_directory_is_one_line(tmp_path):
    result = runner.invoke(app, ["sql", str(tmp_path / "nowhere"), "SELECT 1"])
    assert result.exit_code == 2 and "does not exist" in result.stderr
