"""`python -m curate.cli ...` runs the command line (tests and scripts use it)."""

from curate.cli.app import app

app()
