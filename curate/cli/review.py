"""The commands that look at a run: report and sql (parse, call, print)."""

from __future__ import annotations

import click

from curate.cli.build import command
from curate.schemas.config.review import ReportConfig, SqlConfig


def register(app: click.Group) -> None:
    """Add the review commands to `app`."""

    @command(app, ReportConfig, quiet=True)
    def report(config: ReportConfig, quiet: bool) -> None:
        """Write a self-contained HTML report (and its PNG figures) about a scored run."""
        from curate.console import stdout
        from curate.pipelines.report import run_report

        summary = run_report(config)
        stdout.print(f"report: {summary.html} ({summary.pairs:,} pairs, {summary.thumbnails} thumbnails)",
                     highlight=False)

    @command(app, SqlConfig)
    def sql(config: SqlConfig) -> None:
        """Query a run with SQL: `curate sql runs/r1 "SELECT avg(similarity) FROM scores"`."""
        from curate.pipelines.sql import run_sql

        run_sql(config)
