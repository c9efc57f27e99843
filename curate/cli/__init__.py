"""The `curate` command line: `curate.cli.app:app` is the console script; one module per command group."""
