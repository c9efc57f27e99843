"""`curate prompts generate MODEL_DIR TEXT...`: prompts from a trained prompt model.

The recipe (concept or upsample), tags and task prefix come from the folder's `card.json`;
outputs go to stdout (one prompt per line) or, atomically, to `--out`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from curate.console import log
from curate.errors import CurateError
from curate.io.atomic import atomic_path
from curate.models.devices import resolve_device
from curate.prompt_lms.blocklist import Blocklist, load_blocklist
from curate.prompt_lms.card import BLOCKLIST_FILE, PromptModelCard
from curate.prompt_lms.config import PromptsGenerateConfig
from curate.prompt_lms.generation import Generation, generate
from curate.prompt_lms.models import load_prompt_model


def load_trained(model_dir: Path, *, device: str) -> tuple[Any, Any, PromptModelCard]:
    """(model on its device, tokenizer, card) of a folder `curate prompts train` wrote."""
    card = PromptModelCard.load(model_dir)
    hint = (f"the prompt model {model_dir} is damaged or incomplete; copy it again or retrain it with "
            "`curate prompts train`")
    model, tokenizer = load_prompt_model(str(model_dir), card.recipe, option="MODEL_DIR", hint=hint)
    return model.to(resolve_device(device)).eval(), tokenizer, card


def model_blocklist(model_dir: Path, given: Path | None = None) -> Blocklist:
    """`--blocklist FILE`, else the list the model's data was prepared with (kept in its folder), else the default."""
    if given is not None:
        return load_blocklist(given)
    own = Path(model_dir) / BLOCKLIST_FILE
    return load_blocklist(own, option="the model's") if own.is_file() else load_blocklist()


def refuse_blocked(texts: list[str], blocklist: Blocklist) -> None:
    """A text holding a blocked term is refused: its prompts would repeat it."""
    for text in texts:
        term = blocklist.match(text)
        if term is not None:
            raise CurateError(f"TEXT '{text}' holds the blocked term '{term}' ({blocklist.source} blocklist); "
                              "no prompt is written for it.")


def run_generate(config: PromptsGenerateConfig) -> list[Generation]:
    """Generate `num` prompts per text (none holds a blocked term); writes them to `config.out` when given."""
    config.validate()
    blocklist = model_blocklist(config.model, config.blocklist)
    refuse_blocked(list(config.texts), blocklist)
    model, tokenizer, card = load_trained(config.model, device=config.device)
    settings = config.settings(card.recipe)
    settings.validate()
    made = generate(model, tokenizer, card, list(config.texts), settings=settings, num=config.num,
                    seed=config.seed, batch_size=config.batch_size, blocklist=blocklist)
    withheld = [g for g in made if g.blocked]
    if withheld:
        log.warning("%d prompts still held a blocked term after resampling and were left out", len(withheld))
    made = [g for g in made if not g.blocked]
    if config.out is not None:
        with atomic_path(config.out) as tmp:
            tmp.write_text("".join(g.text + "\n" for g in made), encoding="utf-8")
    return made
