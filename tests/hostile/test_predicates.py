"""Item 1: a `--where` predicate is one expression over the run's columns, never SQL to run."""

from __future__ import annotations

from pathlib import Path

import pytest

from curate.schemas.manifest import read_manifest
from tests.hostile.conftest import assert_one_line_error, files_under, invoke

ESCAPES = [
    pytest.param("TRUE), false); COPY (SELECT 42) TO 'x.csv'; SELECT coalesce((TRUE", "--where", id="copy-to"),
    pytest.param("TRUE), false) OR coalesce((similarity < 0", "--where", id="widen-min-sim"),
    pytest.param("similarity > 0; SELECT 1", "--where", id="two-statements"),
    pytest.param("key IN (SELECT key FROM scores LIMIT 1)", "subquer", id="subquery"),
    pytest.param("EXISTS (SELECT 1)", "subquer", id="exists"),
    pytest.param("count(*) > 0", "--where", id="aggregate"),
    pytest.param("row_number() OVER () < 3", "--where", id="window"),
    pytest.param("similarity > $1", "--where", id="parameter"),
]


@pytest.mark.parametrize("where, says", ESCAPES)
def test_where_that_is_not_one_row_expression_is_refused_and_writes_nothing(hostile_run, tmp_path, monkeypatch,
                                                                             where, says):
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "subset"
    before = files_under(hostile_run.root)
    result = invoke("filter", hostile_run.root, "--out", out, "--min-sim", "0", "--where", where)
    assert_one_line_error(result, says)
    assert files_under(tmp_path) == set(), "nothing may be written: not x.csv, not a subset"
    assert files_under(hostile_run.root) == before


def test_where_cannot_read_a_file_outside_the_run(hostile_run, tmp_path, monkeypatch):
    secret = tmp_path / "secret.txt"
    secret.write_text("7 hunter2-secret-value")
    monkeypatch.chdir(tmp_path)
    for where in (f"CAST((SELECT content FROM read_text('{secret}')) AS INT) = 1",
                  f"length(read_text('{secret}')) > 0", f"'{secret}' IN (SELECT file FROM glob('{tmp_path}/*'))"):
        result = invoke("filter", hostile_run.root, "--out", tmp_path / "subset", "--where", where)
        line = assert_one_line_error(result)
        assert "hunter2" not in result.output and "hunter2" not in line
    assert not (tmp_path / "subset").exists()


def test_a_where_that_widens_the_selection_cannot_make_the_manifest_lie(hostile_run, tmp_path):
    """The attack of the issue, refused; a legitimate OR keeps exactly what the manifest says."""
    out = tmp_path / "subset"
    result = invoke("filter", hostile_run.root, "--out", out, "--min-sim", "0.0",
                    "--where", "similarity < 0.0 OR text LIKE '%[/x]%'", "-q")
    assert result.exit_code == 0, result.output
    manifest = read_manifest(out)
    written = sum(o.rows for o in manifest.outputs)
    assert written == manifest.counts.kept
    assert manifest.counts.kept + sum(manifest.counts.dropped_by_reason.values()) == manifest.counts.scored == 8
    # min-sim >= 0 AND (similarity < 0 OR markup caption): only markup captions at or above 0 survive
    assert 0 < manifest.counts.kept < 3


@pytest.mark.parametrize("where", ["TRUE --", "TRUE /*", "TRUE\n--"])
def test_a_trailing_comment_cannot_swallow_the_other_criteria(hostile_run, tmp_path, where):
    """A comment ends the predicate, not the query: --min-sim still applies."""
    import pyarrow.compute as pc

    from curate.io.run_database import table_dataset

    out = tmp_path / "subset"
    result = invoke("filter", hostile_run.root, "--out", out, "--min-sim", "0.0", "--where", where, "-q")
    if result.exit_code == 2:  # an unclosed block comment does not parse: refused, nothing written
        assert_one_line_error(result, "--where")
        assert not out.exists()
        return
    assert result.exit_code == 0, result.output
    similarity = table_dataset(hostile_run.shard_files("scores")).to_table().column("similarity")
    at_least_zero = pc.sum(pc.greater_equal(similarity, 0.0)).as_py()
    manifest = read_manifest(out)
    assert manifest.counts.kept == sum(o.rows for o in manifest.outputs) == at_least_zero < 8


def test_where_keeps_working_on_meta_columns_with_odd_names(hostile_run, tmp_path):
    out = tmp_path / "subset"
    result = invoke("filter", hostile_run.root, "--out", out, "--where", "\"key\" LIKE '0*/%' AND text IS NOT NULL",
                    "-q")
    assert result.exit_code == 0, result.output
    assert read_manifest(out).counts.kept == 2
    assert Path(out / "manifest.json").is_file()
