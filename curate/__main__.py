"""`python -m curate ...` runs the command line."""

from curate.cli.app import app

app()
