"""The `curate` command line; `curate.cli:app` is the console script's entry point."""

from curate.cli.app import app

__all__ = ["app"]
