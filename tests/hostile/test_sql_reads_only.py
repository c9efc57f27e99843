"""Item 2: `curate sql` reads the run and nothing else, and writes nothing but its --output."""

from __future__ import annotations

import json

import pytest

from curate.errors import CurateError
from curate.io.run_database import RunDatabase
from tests.hostile.conftest import assert_one_line_error, files_under, invoke

# id -> (query, what the one-line refusal names)
WRITERS = {
    "copy-to": ("COPY (SELECT 42) TO 'x.csv'", "COPY"),
    "attach-create": ("ATTACH 'x.db' AS x; CREATE TABLE x.t AS SELECT 1", "statements"),
    "attach": ("ATTACH 'x.db' AS x", "ATTACH"),
    "create": ("CREATE TABLE t AS SELECT 1", "CREATE"),
    "export": ("EXPORT DATABASE 'dump'", "EXPORT"),
    "install": ("INSTALL httpfs", "LOAD"),
    "set": ("SET enable_external_access = true", "SET"),
    "pragma": ("PRAGMA enable_profiling", "PRAGMA"),
    "second-statement": ("SELECT 1; COPY (SELECT 1) TO 'x.csv'", "statements"),
}


@pytest.mark.parametrize("query, says", list(WRITERS.values()), ids=list(WRITERS))
def test_a_statement_that_writes_or_configures_is_refused(hostile_run, tmp_path, monkeypatch, query, says):
    monkeypatch.chdir(tmp_path)
    before = files_under(hostile_run.root)
    assert_one_line_error(invoke("sql", hostile_run.root, query), says)
    assert files_under(tmp_path) == set()
    assert files_under(hostile_run.root) == before


def test_a_query_cannot_read_files_outside_the_run(hostile_run, scored_elsewhere, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("7 hunter2-secret-value")
    for query in (f"SELECT * FROM read_text('{secret}')", f"SELECT * FROM read_csv('{secret}')",
                  f"SELECT * FROM glob('{tmp_path}/*')",
                  f"SELECT count(*) FROM read_parquet('{scored_elsewhere}/scores/*.parquet')",
                  f"SELECT * FROM query('SELECT * FROM read_text(''{secret}'')')"):
        result = invoke("sql", hostile_run.root, query)
        assert_one_line_error(result)
        assert "hunter2" not in result.output, query


def test_the_connection_itself_refuses_writes_and_reconfiguration(hostile_run, tmp_path, monkeypatch):
    """Below the statement check: the locked connection refuses too (defence in depth)."""
    monkeypatch.chdir(tmp_path)
    with RunDatabase(hostile_run.root) as db:
        for sql in ("COPY (SELECT 42) TO 'x.csv'", "ATTACH 'x.db' AS x", "SET enable_external_access = true",
                    "SET lock_configuration = false", "LOAD httpfs"):
            with pytest.raises(CurateError):
                db.arrow(sql)
        assert db.arrow("SELECT count(*) AS n FROM scores").column("n")[0].as_py() == 8
    assert files_under(tmp_path) == set()


def test_output_is_the_only_file_written(hostile_run, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    target = tmp_path / "answer.json"
    result = invoke("sql", hostile_run.root, "SELECT key FROM scores ORDER BY key", "--format", "json",
                    "--output", target)
    assert result.exit_code == 0, result.output
    assert files_under(tmp_path) == {target}
    assert len(json.loads(target.read_text())) == 8


@pytest.mark.parametrize("query", ["DESCRIBE scores", "SUMMARIZE scores", "SHOW TABLES", "EXPLAIN SELECT * FROM scores",
                                   "WITH s AS (SELECT * FROM scores) SELECT count(*) FROM s", "FROM scores LIMIT 1"])
def test_reading_statements_still_work(hostile_run, query):
    result = invoke("sql", hostile_run.root, query, "--format", "json")
    assert result.exit_code == 0, result.output
    json.loads(result.stdout)
