"""Configs of the commands that look at a run: `report` and `sql`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from curate.errors import CurateError
from curate.schemas.config.checks import at_least, local_only, within
from curate.schemas.config.flow import run_dir_argument
from curate.schemas.config.options import argument, check_fields, option

MAX_EXPLAINED = 100  # the page stays readable; all share one pass over the run's captions per fold projection


@dataclass(frozen=True)
class ReportConfig:
    """Write a self-contained HTML report (and its PNG figures) about a scored run."""

    run_dir: Path = run_dir_argument("Scored run directory (reads scores/, embeddings/, errors/).", "report path")
    out: Path | None = option(None, "HTML file to write (default: RUN_DIR/report.html).", flags=("--out", "-o"),
                              check=local_only("report path"))
    thumbnails: int = option(24, "Pairs shown as thumbnails: half lowest-, half highest-aligned.", check=at_least(0))
    sample: int = option(5000, "Points sampled for the 2-D embedding map (0: no map).", check=at_least(0))
    shard_panels: int = option(12, "Per-shard histograms drawn (lowest-mean shards first).", check=at_least(0))
    explain: int = option(12, "Lowest-aligned pairs shown with the run's captions their image lies nearest to "
                          "(what it looks more like; 0: none).", check=within(0, MAX_EXPLAINED))
    thumbnail_px: int = 128
    seed: int = 0

    @property
    def html_path(self) -> Path:
        return self.out if self.out is not None else self.run_dir / "report.html"

    def validate(self) -> None:
        check_fields(self)


@dataclass(frozen=True)
class SqlConfig:
    """Query a run with SQL: `curate sql runs/r1 "SELECT avg(similarity) FROM scores"`."""

    run_dir: Path = run_dir_argument("Run directory (holds scores/, embeddings/, errors/).", "sql path")
    query: str = argument("", "DuckDB SQL over the views scores, embeddings and errors.")
    format: str = option("table", "table, csv, json or parquet.", flags=("--format",))
    output: Path | None = option(None, "Write the result to this file (needed for parquet).", flags=("--output", "-o"))
    vectors: bool = option(False, "Keep image_emb and text_emb in the embeddings view.", flags=("--vectors",))
    max_rows: int = option(50, "Rows the terminal table shows (other formats write all).", check=at_least(0))

    def validate(self) -> None:
        check_fields(self)
        if not self.query.strip():
            raise CurateError("Give a QUERY, e.g. \"SELECT count(*) FROM scores\".")
        if self.format == "parquet" and self.output is None:
            raise CurateError("--format parquet needs --output FILE (Parquet is not written to a terminal).")
        if self.format == "table" and self.output is not None:
            raise CurateError("--output needs --format csv, json or parquet.")
