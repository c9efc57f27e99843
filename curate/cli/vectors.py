"""The vector store's commands: index, search, dedup (parse, call, print)."""

from __future__ import annotations

import click

from curate.cli.build import command
from curate.schemas.config.vectors import DedupConfig, IndexConfig, SearchConfig


def register(app: click.Group) -> None:
    """Add the vector store's commands to `app`."""

    @command(app, IndexConfig, quiet=True)
    def index(config: IndexConfig, quiet: bool) -> None:
        """Build FAISS indexes over the projected image and text vectors: RUN_DIR/index/."""
        from curate.cli.summaries import index_table
        from curate.console import stdout
        from curate.pipelines.index import run_index

        stdout.print(index_table(run_index(config, quiet=quiet)))

    @command(app, SearchConfig, silent=True)
    def search(config: SearchConfig) -> None:
        """The pairs nearest in meaning to a text or an image query, best first."""
        from curate.console import stdout
        from curate.index.display import explanation_json, explanation_table, hits_json, hits_table
        from curate.pipelines.search import run_explain, run_search

        if config.explain:
            explained = run_explain(config)
            if config.json:
                stdout.out(explanation_json(explained.explanation), highlight=False)
            else:
                title = f"curate search --explain ({explained.seconds:.2f}s)"
                stdout.print(explanation_table(explained.explanation, title=title))
            return
        result = run_search(config)
        if config.json:
            stdout.out(hits_json(result.hits, query=result.query), highlight=False)
        else:
            stdout.print(hits_table(result.hits, title=f"curate search ({result.seconds:.2f}s)"))

    @command(app, DedupConfig, quiet=True)
    def dedup(config: DedupConfig, quiet: bool) -> None:
        """Group near-duplicate images, keep the best-aligned of each: RUN_DIR/dedup/."""
        from curate.cli.summaries import dedup_table
        from curate.console import stdout
        from curate.pipelines.dedup import run_dedup

        stdout.print(dedup_table(run_dedup(config, quiet=quiet)))
