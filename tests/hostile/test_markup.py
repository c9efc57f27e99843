"""Item 4: data is printed as text. Markup in a caption, a key or a shard name neither crashes
a command nor restyles its output; `$...$` in a shard name is not mathtext in the report."""

from __future__ import annotations

from curate.console import stdout
from curate.index.display import hits_table
from curate.schemas.index import SearchHit
from tests.hostile.conftest import MARKUP_CAPTION, MATH_SHARD, invoke

CAPTION = MARKUP_CAPTION.decode()


def test_sql_prints_a_markup_caption_as_typed(hostile_run):
    result = invoke("sql", hostile_run.root, "SELECT text FROM scores WHERE text LIKE '[/x]%'")
    assert result.exit_code == 0, (result.output, result.exception)
    assert result.stdout.count("[/x] a [bold]red[/bold] circle") == 3


def test_sql_expanded_records_print_markup_as_typed(hostile_run):
    wide = ", ".join(f"text AS c{i}" for i in range(12))  # too wide for a grid: one record per block
    result = invoke("sql", hostile_run.root, f"SELECT {wide} FROM scores WHERE text LIKE '[/x]%' LIMIT 1")
    assert result.exit_code == 0, (result.output, result.exception)
    assert "[/x]" in result.stdout


def test_search_hits_with_markup_are_printed_as_typed(capsys):
    hits = [SearchHit(rank=1, key="[/x]/[red]k", text=CAPTION, similarity=0.5, shard="[/x]")]
    stdout.print(hits_table(hits, title="curate search"))
    printed = capsys.readouterr().out
    assert "[/x] a [bold]red[/bold]" in printed and "[red]k" in printed


def test_filter_progress_and_errors_with_markup_shard_names(hostile_run, tmp_path):
    """The progress bar names each shard (`m$\\undefinedcmd$`); an error quoting markup stays one line."""
    result = invoke("filter", hostile_run.root, "--out", tmp_path / "subset")
    assert result.exit_code == 0, (result.output, result.exception)
    bad = invoke("filter", hostile_run.root, "--out", tmp_path / "other", "--where", "[/x] > 1")
    assert bad.exit_code == 2 and "[/x]" in bad.stderr


def test_report_draws_a_mathtext_shard_name_as_text(hostile_run, tmp_path):
    out = tmp_path / "report.html"
    result = invoke("report", hostile_run.root, "--out", out, "--thumbnails", "4", "--sample", "0", "-q")
    assert result.exit_code == 0, (result.output, result.exception)
    assert MATH_SHARD.removesuffix(".tar") in out.read_text()
