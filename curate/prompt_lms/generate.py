"""`curate prompts generate MODEL_DIR TEXT...`: prompts from a trained prompt model.

The recipe (concept or upsample), tags and task prefix come from the folder's `card.json`;
outputs go to stdout (one prompt per line) or, atomically, to `--out`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from curate.io.atomic import atomic_path
from curate.models.devices import resolve_device
from curate.prompt_lms.card import PromptModelCard
from curate.prompt_lms.config import PromptsGenerateConfig
from curate.prompt_lms.generation import Generation, generate
from curate.prompt_lms.models import load_prompt_model


def load_trained(model_dir: Path, *, device: str) -> tuple[Any, Any, PromptModelCard]:
    """(model on its device, tokenizer, card) of a folder `curate prompts train` wrote."""
    card = PromptModelCard.load(model_dir)
    hint = f"the prompt model {model_dir} is damaged or incomplete; copy it again or retrain it with `curate prompts train`"
    model, tokenizer = load_prompt_model(str(model_dir), card.recipe, option="MODEL_DIR", hint=hint)
    return model.to(resolve_device(device)).eval(), tokenizer, card


def run_generate(config: PromptsGenerateConfig) -> list[Generation]:
    """Generate `num` prompts per text; writes them to `config.out` when given."""
    config.validate()
    model, tokenizer, card = load_trained(config.model, device=config.device)
    settings = config.settings(card.recipe)
    settings.validate()
    made = generate(model, tokenizer, card, list(config.texts), settings=settings, num=config.num,
                    seed=config.seed, batch_size=config.batch_size)
    if config.out is not None:
        with atomic_path(config.out) as tmp:
            tmp.write_text("".join(g.text + "\n" for g in made), encoding="utf-8")
    return made
