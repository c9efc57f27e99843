"""`curate caption ...`: the image-to-prompt captioner's commands (parse, call, print)."""

from __future__ import annotations

from curate.captioner.config import (
    CaptionEvalConfig,
    CaptionGenerateConfig,
    CaptionTrainConfig,
)
from curate.cli.build import FlowGroup, command, subgroup


def register(app: FlowGroup) -> None:
    """Add the `caption` group to `app`."""
    caption = subgroup(app, "caption")

    @command(caption, CaptionTrainConfig, name="train", quiet=True)
    def caption_train(config: CaptionTrainConfig, quiet: bool) -> None:
        """Train the captioner on a subset; keeps the best checkpoint by validation loss."""
        from curate.captioner.train import run_caption_train
        from curate.cli.caption_summaries import train_table
        from curate.console import stdout

        stdout.print(train_table(run_caption_train(config, quiet=quiet)))

    @command(caption, CaptionGenerateConfig, name="generate", quiet=True)
    def caption_generate(config: CaptionGenerateConfig, quiet: bool) -> None:
        """Write a prompt for every image: key, prompt, reference (from subsets), error."""
        from curate.captioner.generate import run_caption_generate

        run_caption_generate(config, quiet=quiet)

    @command(caption, CaptionEvalConfig, name="eval", quiet=True)
    def caption_eval(config: CaptionEvalConfig, quiet: bool) -> None:
        """BLEU, METEOR and embedding cosine of generated vs reference prompts (+ alignment under --projection)."""
        import json

        from curate.captioner.eval import run_caption_eval
        from curate.cli.caption_summaries import eval_table
        from curate.console import stdout

        summary = run_caption_eval(config, quiet=quiet)
        if config.json:
            stdout.print_json(json.dumps(summary.to_json()))
        else:
            stdout.print(eval_table(summary))
