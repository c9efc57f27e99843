"""The main flow's commands: embed, train, score, stats, filter (parse, call, print)."""

from __future__ import annotations

import click

from curate.cli.build import command
from curate.schemas.config.flow import (
    EmbedConfig,
    FilterConfig,
    ScoreConfig,
    StatsConfig,
    TrainConfig,
)


def register(app: click.Group) -> None:
    """Add the flow's commands to `app`, in the order a run takes them."""

    @command(app, EmbedConfig, quiet=True)
    def embed(config: EmbedConfig, quiet: bool) -> None:
        """Embed image-text pairs: shards -> RUN_DIR/embeddings/ (+ errors/), resumable."""
        from curate.cli.summaries import embed_table, stage_line
        from curate.console import stderr, stdout
        from curate.pipelines.embed import run_embed

        summary = run_embed(config, quiet=quiet)
        stdout.print(embed_table(summary))
        if not quiet and stage_line(summary):
            stderr.print(stage_line(summary), highlight=False)

    @command(app, TrainConfig, quiet=True)
    def train(config: TrainConfig, quiet: bool) -> None:
        """Learn the alignment projection from a run's embeddings: RUN_DIR -> PROJ_DIR."""
        from curate.cli.summaries import train_table
        from curate.console import stdout
        from curate.pipelines.train import run_train

        stdout.print(train_table(run_train(config, quiet=quiet)))

    @command(app, ScoreConfig, quiet=True)
    def score(config: ScoreConfig, quiet: bool) -> None:
        """Score every pair: embeddings (made only where missing) + projection -> RUN_DIR/scores/."""
        from curate.cli.summaries import score_table
        from curate.console import stdout
        from curate.pipelines.score import run_score

        stdout.print(score_table(run_score(config, quiet=quiet)))

    @command(app, StatsConfig)
    def stats(config: StatsConfig) -> None:
        """Count, mean, spread, quantiles, histogram and threshold counts of a run's similarity."""
        import json
        import sys

        from curate.cli.summaries import stats_tables
        from curate.console import stdout
        from curate.pipelines.stats import run_stats

        result = run_stats(config)
        if config.json:
            sys.stdout.write(json.dumps(result.to_json(), indent=2) + "\n")
            return
        for table in stats_tables(result):
            stdout.print(table)

    @command(app, FilterConfig, name="filter", quiet=True)
    def filter_(config: FilterConfig, quiet: bool) -> None:
        """Write the pairs that pass every criterion, original image bytes untouched, + manifest.json."""
        from curate.cli.summaries import filter_table
        from curate.console import stdout
        from curate.pipelines.filter import run_filter

        stdout.print(filter_table(run_filter(config, quiet=quiet)))
