"""`curate prompts train concept|upsample`: fine-tune a prompt model on prepared prompts.

DATA is a folder `curate prompts prepare` wrote; anything else prepare accepts (a subset, a
table of prompts) is prepared first into OUT/data with the default cleaning. The best model
by validation loss lands in OUT (with `card.json`), the newest epoch in OUT/checkpoints/last.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from curate.console import log
from curate.errors import CurateError
from curate.io.atomic import atomic_path
from curate.models.devices import resolve_device
from curate.models.loading import LOCAL, model_ref, model_source
from curate.prompt_lms.batches import Batcher, PromptRows, load_rows
from curate.prompt_lms.card import (
    BLOCKLIST_FILE,
    CARD_FILE,
    PREPARE_REPORT,
    PrepareReport,
    PromptModelCard,
)
from curate.prompt_lms.checkpoints import last_dir, load_last
from curate.prompt_lms.config import (
    RECIPE_GENERATION,
    PromptsPrepareConfig,
    PromptTrainConfig,
)
from curate.prompt_lms.models import (
    freeze_to_top,
    load_prompt_model,
    training_precision,
)
from curate.prompt_lms.trainer import LoopState, PromptTrainer, TrainParts


@dataclass(frozen=True)
class TrainSummary:
    """What a training run ended with, for the CLI's table."""

    out: Path
    card: PromptModelCard
    trainable_params: int
    total_params: int
    train_rows: int
    validation_rows: int


def prepared_data(config: PromptTrainConfig) -> Path:
    """A prepared folder as given, or OUT/data prepared from the raw inputs."""
    if len(config.data) == 1 and (Path(config.data[0]) / PREPARE_REPORT).is_file():
        return Path(config.data[0])
    from curate.prompt_lms.prepare import run_prepare

    log.info("preparing %s into %s", ", ".join(map(str, config.data)), config.out / "data")
    run_prepare(PromptsPrepareConfig(inputs=tuple(config.data), out=config.out / "data"))
    return config.out / "data"


def run_train(config: PromptTrainConfig) -> TrainSummary:
    """Train (or resume) one recipe; returns the final card and sizes."""
    config.validate()
    if last_dir(config.out).exists() and not config.resume:
        raise CurateError(f"{config.out} already holds a training run; pass --resume to continue it or pick another --out.")
    device = resolve_device(config.device)  # cheap refusals first, then the model, then the data
    precision = training_precision(config.precision, device, allow_fp16=config.recipe == "concept")
    model, tokenizer, state, optim = _start(config)
    data = prepared_data(config)
    report = PrepareReport.load(data)
    _carry_blocklist(data, config.out)
    train, validation = _rows(data, config.recipe)
    trainable, total = freeze_to_top(model, config.trainable_layers)
    model.to(device)
    log.info("training %s: %s of %s parameters, %d train / %d validation prompts, %s",
             config.recipe, f"{trainable:,}", f"{total:,}", len(train), len(validation), precision.name)
    card = _card(config, report, data=data, rows=len(train), precision=precision.name)
    parts = TrainParts(
        model=model, tokenizer=tokenizer, device=device, precision=precision, train=train, validation=validation,
        batcher=Batcher(tokenizer, recipe=config.recipe, max_tokens=config.max_tokens, prefix=config.prefix),
        on_best=lambda s: _save_card(card, s, config.out), epoch_metrics=_epoch_metrics(config, card, tokenizer, data),
    )
    trainer = PromptTrainer(parts, config)
    if optim is not None:
        trainer.load_optim_state(optim)
    state = trainer.fit(state, out=config.out)
    _save_card(card, state, config.out)
    return TrainSummary(out=config.out, card=card, trainable_params=trainable, total_params=total,
                        train_rows=len(train), validation_rows=len(validation))


def _carry_blocklist(data: Path, out: Path) -> None:
    """A user's blocklist the data was prepared with goes into the model folder: generation applies it too."""
    if (data / BLOCKLIST_FILE).is_file():
        with atomic_path(out / BLOCKLIST_FILE) as tmp:
            tmp.write_bytes((data / BLOCKLIST_FILE).read_bytes())


def _rows(data: Path, recipe: str) -> tuple[PromptRows, PromptRows]:
    train, validation = load_rows(data / "train.parquet", recipe), load_rows(data / "validation.parquet", recipe)
    if not len(train) or not len(validation):
        raise CurateError(
            f"{data} has {len(train)} train and {len(validation)} validation prompts; both must be non-empty "
            "(give more prompts or raise --validation-fraction when preparing)."
        )
    return train, validation


def _start(config: PromptTrainConfig) -> tuple[Any, Any, LoopState, dict[str, Any] | None]:
    """The base model for a new run; the last checkpoint's weights and state for `--resume`."""
    if not config.resume:
        model_source(config.base, option="--base")
        model, tokenizer = load_prompt_model(config.base, config.recipe)
        return model, tokenizer, LoopState(), None
    folder, state, optim = load_last(config.out)
    hint = f"the checkpoint {folder} is damaged; train again without --resume into a new --out"
    model, tokenizer = load_prompt_model(str(folder), config.recipe, option="--resume", hint=hint)
    log.info("resuming %s after epoch %d (step %d)", config.out, state["epoch"], state["step"])
    return model, tokenizer, LoopState(**state), optim


def _card(
    config: PromptTrainConfig, report: PrepareReport, *, data: Path, rows: int, precision: str
) -> PromptModelCard:
    """The card: a local --base is recorded as an absolute folder and marked local, a hub id as given."""
    if config.resume and (config.out / CARD_FILE).is_file():
        started = PromptModelCard.load(config.out)
        source, base = started.base_source, started.base
    else:
        source, base = model_ref(config.base, option="--base", warn=False)  # _start warned of a shadowing folder
        log.info("base model: %s %s", "local folder" if source == LOCAL else "hub id", base)
    return PromptModelCard(
        recipe=config.recipe, base=base, base_source=source, tags=dict(report.tags), prefix=config.prefix,
        max_tokens=config.max_tokens, trainable_layers=config.trainable_layers, data=str(data),
        train_rows=rows, precision=precision, blocklist=report.blocklist,
    )


def _save_card(card: PromptModelCard, state: LoopState, out: Path) -> None:
    card.best_epoch, card.best_validation_loss, card.epochs_run = state.best_epoch, state.best_loss, state.epoch
    metrics = [r for r in state.history if r["epoch"] == state.best_epoch and r["name"].startswith("validation")]
    card.metrics = {r["name"]: r["value"] for r in metrics}
    card.save(out)


def _epoch_metrics(config: PromptTrainConfig, card: PromptModelCard, tokenizer: Any, data: Path) -> Any:
    """METEOR of generations for the first `eval_samples` validation prompts, each epoch: the
    upsampler writes from their plain version, the concept model from their subject (and the
    share of its prompts that closed with the end tag is logged as completion)."""
    if config.eval_samples == 0:
        return None
    from curate.prompt_lms.generation import generate
    from curate.text_metrics import meteor

    inputs, targets = _metric_pairs(data / "validation.parquet", recipe=config.recipe, most=config.eval_samples)
    if not inputs:
        return None

    def measure(model: Any) -> dict[str, float]:
        made = generate(model, tokenizer, card, inputs, settings=RECIPE_GENERATION[config.recipe], seed=config.seed)
        scores = {"validation_meteor": sum(meteor(g.text, t) for g, t in zip(made, targets)) / len(targets)}
        if config.recipe == "concept":
            scores["validation_completion"] = sum(g.complete for g in made) / len(made)
        return scores

    return measure


def _metric_pairs(path: Path, *, recipe: str, most: int) -> tuple[list[str], list[str]]:
    """(what the model is given, what it should write) for the first `most` usable validation rows."""
    import pyarrow.parquet as pq

    source = "plain" if recipe == "upsample" else "subject"
    table = pq.read_table(path, columns=[source, "text"]).to_pydict()
    pairs = [(s, t) for s, t in zip(table[source], table["text"]) if s and s.strip()][:most]
    return [s for s, _ in pairs], [t for _, t in pairs]
