"""The `curate` app: every command group registered in the order of the flow.

No logic lives in the command modules: each parses its options into a config (built from the
config's own fields, `curate/cli/build.py`), calls one pipeline and prints what it returned.
The products' groups (`caption`, `prompts`) are registered when first used.
"""

from __future__ import annotations

from curate.cli import flow, review, vectors
from curate.cli.build import group

PRODUCTS = {
    "caption": ("curate.cli.caption", "The image-to-prompt captioner (ResNet + GPT-2): train, generate, eval."),
    "prompts": ("curate.cli.prompts", "Prompt-writing language models: prepare, train, generate, eval."),
}

app = group(help="""Score and filter image-text pairs into clean training sets.

The flow: embed -> train -> score -> filter. Run `curate COMMAND --help` for each step.""", lazy=PRODUCTS)

for commands in (flow, vectors, review):
    commands.register(app)

if __name__ == "__main__":
    app()
