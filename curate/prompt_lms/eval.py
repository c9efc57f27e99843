"""`curate prompts eval MODEL_DIR DATA`: generate for held-out inputs and score the outputs.

Upsampler: each held-out plain prompt is upsampled and compared with its detailed original.
Concept model: subjects are the best-scored noun phrases of the held-out prompts
(`prompts.subjects`), and each generation is compared with the held-out prompts that
mention its subject. Metrics: BERTScore P/R/F1 (own implementation, `--score-model`
encoder), exact-match METEOR, mean length in words, distinct-1/2 over all generations,
faithfulness (share of generations containing their subject) and, for concept models,
completion (share that closed with the end tag).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from curate.errors import CurateError
from curate.models.devices import resolve_device
from curate.prompt_lms.bertscore import BertScorer
from curate.prompt_lms.card import PromptModelCard
from curate.prompt_lms.config import PromptsEvalConfig
from curate.prompt_lms.generate import load_trained, model_blocklist
from curate.prompt_lms.generation import Generation, generate
from curate.prompt_lms.subjects import top_subjects
from curate.text_metrics import (
    best_meteor,
    contains_phrase,
    distinct_n,
    faithfulness,
    words,
)

REFERENCES_PER_SUBJECT = 20


@dataclass(frozen=True)
class EvalInputs:
    """What the model is asked for, what it should keep, and what it is compared with."""

    texts: list[str]
    subjects: list[str]
    references: list[list[str]]


@dataclass
class EvalResult:
    """Metric name -> value, plus what was evaluated and a few examples."""

    model: str
    recipe: str
    data: str
    inputs: int
    generations: int
    metrics: dict[str, float] = field(default_factory=dict)
    examples: list[dict[str, str]] = field(default_factory=list)
    subjects: list[str] = field(default_factory=list)  # concept: the subjects picked from the held-out prompts


def read_held_out(data: Path) -> dict[str, list[str]]:
    """The `text`, `plain` and `subject` columns of a prepared table (a folder means its test split)."""
    path = data / "test.parquet" if data.is_dir() else data
    if not path.is_file():
        raise CurateError(f"{path} does not exist; pass a table `curate prompts prepare` wrote (e.g. DATA/test.parquet).")
    try:
        table = pq.read_table(path, columns=["text", "plain", "subject"], memory_map=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable table is the user's to fix
        raise CurateError(f"{path} is not a prepared prompt table ({str(exc).splitlines()[0][:120]}).") from None
    if table.num_rows == 0:
        raise CurateError(f"{path} holds no prompts to evaluate on.")
    return {name: table.column(name).to_pylist() for name in ("text", "plain", "subject")}


def eval_inputs(card: PromptModelCard, held_out: dict[str, list[str]], config: PromptsEvalConfig) -> EvalInputs:
    if card.recipe == "upsample":
        n = min(config.limit, len(held_out["text"]))
        return EvalInputs(texts=held_out["plain"][:n], subjects=held_out["subject"][:n],
                          references=[[t] for t in held_out["text"][:n]])
    subjects = top_subjects(held_out["text"], count=config.subjects, min_frequency=1)
    references = [[t for t in held_out["text"] if contains_phrase(t, s)][:REFERENCES_PER_SUBJECT] for s in subjects]
    if not subjects:
        raise CurateError("No subject could be extracted from the held-out prompts; give a larger table.")
    return EvalInputs(texts=subjects, subjects=subjects, references=references)


def run_eval(config: PromptsEvalConfig) -> EvalResult:
    """Generate with the recipe's decoding defaults (or the given lengths), then score. Everything that can fail
    (the table, the model, the settings, BERTScore's encoder) is loaded or checked before generation starts."""
    config.validate()
    held_out = read_held_out(config.data)
    model, tokenizer, card = load_trained(config.model, device=config.device)
    inputs = eval_inputs(card, held_out, config)
    settings = config.settings(card.recipe)
    settings.validate()
    scorer = BertScorer(config.score_model, device=resolve_device(config.device))
    made = generate(model, tokenizer, card, inputs.texts, settings=settings, num=config.num, seed=config.seed,
                    batch_size=config.batch_size, blocklist=model_blocklist(config.model))
    return score_generations(made, inputs, card=card, scorer=scorer, num=config.num, model=config.model,
                             data=config.data)


def score_generations(made: list[Generation], inputs: EvalInputs, *, card: PromptModelCard, scorer: BertScorer,
                      num: int, model: Path, data: Path) -> EvalResult:
    """Every metric over the generations (each input's `num` generations share its references)."""
    texts = [g.text for g in made]
    subjects = [s for s in inputs.subjects for _ in range(num)]
    references = [r for r in inputs.references for _ in range(num)]
    bert = scorer.score(texts, references)
    metrics = {
        "bertscore_precision": float(bert.precision.mean()),
        "bertscore_recall": float(bert.recall.mean()),
        "bertscore_f1": float(bert.f1.mean()),
        "meteor": float(np.mean([best_meteor(t, refs) for t, refs in zip(texts, references)])),
        "length_words": float(np.mean([len(words(t)) for t in texts])),
        "input_length_words": float(np.mean([len(words(t)) for t in inputs.texts])),
        "distinct_1": distinct_n(texts, 1),
        "distinct_2": distinct_n(texts, 2),
        "faithfulness": faithfulness(texts, subjects),
    }
    if card.recipe == "concept":
        metrics["completion"] = float(np.mean([g.complete for g in made]))
    examples = [{"input": g.input, "output": g.text} for g in made[: min(len(made), 3 * num)]]
    return EvalResult(model=str(model), recipe=card.recipe, data=str(data), inputs=len(inputs.texts),
                      generations=len(made), metrics={k: round(v, 4) for k, v in metrics.items()}, examples=examples,
                      subjects=list(inputs.subjects) if card.recipe == "concept" else [])
