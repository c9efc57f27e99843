"""The `curate` app: every command group registered in the order of the flow.

No logic lives in the command modules: each parses its options into a config (built from the
config's own fields, `curate/cli/build.py`), calls one pipeline and prints what it returned.
"""

from __future__ import annotations

import typer

from curate.cli import caption, flow, prompts, review, vectors

app = typer.Typer(
    help="Score and filter image-text pairs into clean training sets.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def main() -> None:
    """Score and filter image-text pairs into clean training sets.

    The flow: embed -> train -> score -> filter. Run `curate COMMAND --help` for each step.
    """


for group in (flow, vectors, review, caption, prompts):
    group.register(app)

if __name__ == "__main__":
    app()
