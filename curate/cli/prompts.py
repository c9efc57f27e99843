"""`curate prompts ...`: the prompt-writing language models' commands (parse, call, print)."""

from __future__ import annotations

from curate.cli.build import FlowGroup, command, subgroup
from curate.prompt_lms.config import (
    ConceptTrainConfig,
    PromptsEvalConfig,
    PromptsGenerateConfig,
    PromptsPrepareConfig,
    PromptTrainConfig,
    UpsampleTrainConfig,
)


def register(app: FlowGroup) -> None:
    """Add the `prompts` group (and its `train` subgroup) to `app`."""
    prompts = subgroup(app, "prompts")

    @command(prompts, PromptsPrepareConfig, name="prepare", quiet=True)
    def prompts_prepare(config: PromptsPrepareConfig, quiet: bool) -> None:
        """Clean, dedup, blocklist, tag and split prompts; reports what was removed and why."""
        from curate.cli.prompts_summaries import prepare_table
        from curate.console import stdout
        from curate.prompt_lms.prepare import run_prepare

        stdout.print(prepare_table(run_prepare(config)))

    train = subgroup(prompts, "train", "Fine-tune a prompt model: `concept` (GPT-2) or `upsample` (FLAN-T5).")
    for config_type in (ConceptTrainConfig, UpsampleTrainConfig):
        command(train, config_type, name=config_type.recipe, quiet=True)(train_prompt_model(config_type))

    @command(prompts, PromptsGenerateConfig, name="generate", quiet=True)
    def prompts_generate(config: PromptsGenerateConfig, quiet: bool) -> None:
        """Write prompts: `curate prompts generate models/concept2prompt "a lighthouse" -n 5`."""
        from curate.console import stdout
        from curate.prompt_lms.generate import run_generate

        made = run_generate(config)
        if config.out is None:
            for generation in made:
                stdout.print(generation.text, markup=False, highlight=False, soft_wrap=True)

    @command(prompts, PromptsEvalConfig, name="eval", quiet=True)
    def prompts_eval(config: PromptsEvalConfig, quiet: bool) -> None:
        """Score generations: BERTScore, METEOR, length, distinct-n, subject faithfulness."""
        import dataclasses
        import json

        from curate.cli.prompts_summaries import eval_table
        from curate.console import stdout
        from curate.prompt_lms.eval import run_eval

        result = run_eval(config)
        if config.json:
            stdout.print_json(json.dumps(dataclasses.asdict(result)))
        else:
            stdout.print(eval_table(result))


def train_prompt_model(config_type: type[PromptTrainConfig]):  # noqa: ANN201 - a command function
    """The `train <recipe>` command of one recipe: same options, the recipe's own defaults."""

    def run(config: PromptTrainConfig, quiet: bool) -> None:
        from curate.cli.prompts_summaries import train_table
        from curate.console import stdout
        from curate.prompt_lms.train import run_train

        stdout.print(train_table(run_train(config)))

    run.__doc__ = (config_type.__doc__ or "").split("\n\n")[0]
    return run
