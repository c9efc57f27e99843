"""The `curate` command line: parses options into a config, calls a pipeline, prints.

No logic lives here. Problems a user can fix arrive as `CurateError` and leave as one line
on stderr with exit code 2.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, Callable, Optional, TypeVar

import typer

from curate.errors import CurateError
from curate.schemas.config import (
    EmbedConfig,
    EncoderConfig,
    ExecutorConfig,
    FilterConfig,
    ReportConfig,
    ScoreConfig,
    SqlConfig,
    StatsConfig,
    TrainConfig,
)

app = typer.Typer(
    help="Score and filter image-text pairs into clean training sets.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
F = TypeVar("F", bound=Callable[..., Any])
EMBED = EmbedConfig()
ENC = EncoderConfig()


def reports_errors(fn: F) -> F:
    """Print a `CurateError` as one line and exit 2 instead of showing a traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from rich.markup import escape

        from curate.console import stderr

        try:
            return fn(*args, **kwargs)
        except CurateError as exc:  # escaped: messages quote paths and hints with [brackets]
            stderr.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            stderr.print("interrupted; rerun the same command to resume where it stopped")
            raise typer.Exit(130) from None

    return wrapper  # type: ignore[return-value]


@app.callback()
def main() -> None:
    """Score and filter image-text pairs into clean training sets.

    The flow: embed -> train -> score -> filter. Run `curate COMMAND --help` for each step.
    """


QUIET = typer.Option(False, "--quiet", "-q", help="Silence logs and progress; print only results and errors.")
EXEC = ExecutorConfig()
EXECUTOR = typer.Option(EXEC.name, "--executor", help="Where shards run: local (this process) or ray (a Ray cluster).")
RAY_ADDRESS = typer.Option(None, "--ray-address", help="Ray cluster to join (unset: RAY_ADDRESS, else start a local one).")
CPUS_PER_WORKER = typer.Option(EXEC.num_cpus_per_worker, help="Ray: CPUs each worker reserves.")
GPUS_PER_WORKER = typer.Option(EXEC.num_gpus_per_worker, help="Ray: GPUs each worker reserves (1: one model copy per GPU).")
CONCURRENCY = typer.Option(None, "--concurrency", help="Ray: workers to start (unset: as many as the cluster fits).")
MAX_RETRIES = typer.Option(EXEC.max_retries, help="Ray: restarts of a worker that died; its shard is redone.")


def executor_config(name: str, ray_address: Optional[str], num_cpus_per_worker: float,
                    num_gpus_per_worker: float, concurrency: Optional[int], max_retries: int) -> ExecutorConfig:
    """The executor options every sharded command shares, as one config."""
    return ExecutorConfig(
        name=name, ray_address=ray_address, num_cpus_per_worker=num_cpus_per_worker,
        num_gpus_per_worker=num_gpus_per_worker, concurrency=concurrency, max_retries=max_retries,
    )


@app.command()
@reports_errors
def embed(
    inputs: list[str] = typer.Argument(..., metavar="INPUT", help="Shard files or directories (walked recursively), or URLs (s3://, gs://, hf:// ...)."),
    out: str = typer.Option(..., "--out", "-o", metavar="RUN_DIR", help="Run directory or URL: writes embeddings/ and errors/ there."),
    image_model: str = typer.Option(ENC.image_model, help="Image encoder: hub id or local directory."),
    text_model: str = typer.Option(ENC.text_model, help="Text encoder: hub id or local directory."),
    text_pooling: str = typer.Option(ENC.text_pooling, help="Text pooling: mean or cls."),
    max_text_tokens: int = typer.Option(ENC.max_text_tokens, help="Captions are truncated to this many tokens."),
    batch_size: int = typer.Option(EMBED.batch_size, help="Pairs per model batch."),
    workers: int = typer.Option(EMBED.workers, help="Decode worker processes (0: decode in the main process)."),
    device: str = typer.Option(ENC.device, help="auto, cpu or cuda."),
    format: Optional[str] = typer.Option(None, "--format", help="Force a shard format instead of detecting it."),
    limit: Optional[int] = typer.Option(None, help="Embed at most this many samples per shard (for a quick try)."),
    overwrite: bool = typer.Option(False, help="Redo shards that are already embedded."),
    executor: str = EXECUTOR,
    ray_address: Optional[str] = RAY_ADDRESS,
    num_cpus_per_worker: float = CPUS_PER_WORKER,
    num_gpus_per_worker: float = GPUS_PER_WORKER,
    concurrency: Optional[int] = CONCURRENCY,
    max_retries: int = MAX_RETRIES,
    quiet: bool = QUIET,
) -> None:
    """Embed image-text pairs: shards -> RUN_DIR/embeddings/ (+ errors/), resumable."""
    from curate.cli.summaries import embed_table, stage_line
    from curate.console import setup_logging, stderr, stdout
    from curate.pipelines.embed import run_embed

    setup_logging(quiet=quiet)
    encoders = EncoderConfig(
        image_model=image_model, text_model=text_model, text_pooling=text_pooling,
        max_text_tokens=max_text_tokens, device=device,
    )
    config = EmbedConfig(
        inputs=tuple(inputs), out=out, encoders=encoders, batch_size=batch_size, workers=workers,
        format=format, limit=limit, overwrite=overwrite,
        executor=executor_config(executor, ray_address, num_cpus_per_worker, num_gpus_per_worker, concurrency, max_retries),
    )
    summary = run_embed(config, quiet=quiet)
    stdout.print(embed_table(summary))
    if not quiet and stage_line(summary):
        stderr.print(stage_line(summary), highlight=False)


@app.command()
@reports_errors
def sql(
    run_dir: Path = typer.Argument(..., help="Run directory (holds scores/, embeddings/, errors/)."),
    query: str = typer.Argument(..., help="DuckDB SQL over the views scores, embeddings and errors."),
    format: str = typer.Option(SqlConfig().format, "--format", help="table, csv, json or parquet."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Write the result to this file (needed for parquet)."),
    vectors: bool = typer.Option(False, "--vectors", help="Keep image_emb and text_emb in the embeddings view."),
    max_rows: int = typer.Option(SqlConfig().max_rows, help="Rows the terminal table shows (other formats write all)."),
) -> None:
    """Query a run with SQL: `curate sql runs/r1 "SELECT avg(similarity) FROM scores"`."""
    from curate.pipelines.sql import run_sql

    config = SqlConfig(run_dir=run_dir, query=query, format=format, output=output, vectors=vectors, max_rows=max_rows)
    run_sql(config)


REPORT = ReportConfig()


@app.command()
@reports_errors
def report(
    run_dir: Path = typer.Argument(..., help="Scored run directory (reads scores/, embeddings/, errors/)."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="HTML file to write (default: RUN_DIR/report.html)."),
    thumbnails: int = typer.Option(REPORT.thumbnails, help="Pairs shown as thumbnails: half lowest-, half highest-aligned."),
    sample: int = typer.Option(REPORT.sample, help="Points sampled for the 2-D embedding map (0: no map)."),
    shard_panels: int = typer.Option(REPORT.shard_panels, help="Per-shard histograms drawn (lowest-mean shards first)."),
    quiet: bool = QUIET,
) -> None:
    """Write a self-contained HTML report (and its PNG figures) about a scored run."""
    from curate.console import setup_logging, stdout
    from curate.pipelines.report import run_report

    setup_logging(quiet=quiet)
    config = ReportConfig(run_dir=run_dir, out=out, thumbnails=thumbnails, sample=sample, shard_panels=shard_panels)
    summary = run_report(config)
    stdout.print(f"report: {summary.html} ({summary.pairs:,} pairs, {summary.thumbnails} thumbnails)", highlight=False)


FILTER = FilterConfig()


@app.command("filter")
@reports_errors
def filter_(
    run_dir: Path = typer.Argument(..., help="Scored run directory (reads RUN_DIR/scores/)."),
    out: Path = typer.Option(..., "--out", "-o", help="Subset directory: output shards + manifest.json."),
    min_sim: Optional[float] = typer.Option(None, "--min-sim", help="Keep pairs with similarity >= this (in [-1, 1])."),
    max_sim: Optional[float] = typer.Option(None, "--max-sim", help="Keep pairs with similarity <= this (in [-1, 1])."),
    top_fraction: Optional[float] = typer.Option(
        None, "--top-fraction", help="Keep the best fraction (0, 1] of the run's pairs by similarity."
    ),
    where: Optional[str] = typer.Option(
        None, "--where", help="SQL predicate over score and meta columns, e.g. \"sampler = 'k_lms' AND width >= 512\"."
    ),
    dedup: bool = typer.Option(False, "--dedup", help="Drop the near-duplicates `curate dedup` marked (kept = false)."),
    format: str = typer.Option(FILTER.format, "--format", help="Output format: parquet, webdataset or imagefolder."),
    shard_size: int = typer.Option(FILTER.shard_size, "--shard-size", help="Pairs per output shard."),
    overwrite: bool = typer.Option(False, help="Replace a finished subset in --out."),
    quiet: bool = QUIET,
) -> None:
    """Write the pairs that pass every criterion, original image bytes untouched, + manifest.json."""
    from curate.cli.summaries import filter_table
    from curate.console import setup_logging, stdout
    from curate.pipelines.filter import run_filter

    setup_logging(quiet=quiet)
    config = FilterConfig(
        run_dir=run_dir, out=out, min_sim=min_sim, max_sim=max_sim, top_fraction=top_fraction,
        where=where, dedup=dedup, format=format, shard_size=shard_size, overwrite=overwrite,
    )
    summary = run_filter(config, quiet=quiet)
    stdout.print(filter_table(summary))


TRAIN = TrainConfig()


@app.command()
@reports_errors
def train(
    run_dir: Path = typer.Argument(..., help="Run directory whose embeddings/ the projection learns from."),
    out: Path = typer.Option(..., "--out", "-o", help="Projection directory: writes the weights and card.json."),
    loss: str = typer.Option(TRAIN.loss, help="contrastive (shared space, InfoNCE) or cosine (image -> text space)."),
    dim: int = typer.Option(TRAIN.dim, help="Shared space size (contrastive; cosine maps into the text space)."),
    epochs: int = typer.Option(TRAIN.epochs, help="Passes over the training split."),
    batch_size: int = typer.Option(TRAIN.batch_size, help="Pairs per step (the contrastive loss's in-batch negatives)."),
    lr: float = typer.Option(TRAIN.lr, help="AdamW learning rate."),
    weight_decay: float = typer.Option(TRAIN.weight_decay, help="AdamW weight decay on the projection matrices."),
    val_fraction: float = typer.Option(TRAIN.val_fraction, help="Share of pairs held out for validation (by key hash)."),
    max_val_pairs: int = typer.Option(TRAIN.max_val_pairs, help="Held-out pairs the validation metrics use at most."),
    seed: int = typer.Option(TRAIN.seed, help="Same seed and same data give byte-identical weights."),
    device: str = typer.Option(TRAIN.device, help="auto, cpu or cuda."),
    quiet: bool = QUIET,
) -> None:
    """Learn the alignment projection from a run's embeddings: RUN_DIR -> PROJ_DIR."""
    from curate.cli.summaries import train_table
    from curate.console import setup_logging, stdout
    from curate.pipelines.train import run_train

    setup_logging(quiet=quiet)
    config = TrainConfig(
        run=run_dir, out=out, loss=loss, dim=dim, epochs=epochs, batch_size=batch_size, lr=lr,
        weight_decay=weight_decay, val_fraction=val_fraction, max_val_pairs=max_val_pairs, seed=seed, device=device,
    )
    stdout.print(train_table(run_train(config, quiet=quiet)))


SCORE = ScoreConfig()


@app.command()
@reports_errors
def score(
    inputs: list[str] = typer.Argument(..., metavar="INPUT", help="Shard files or directories, or run directories (their embeddings/); local or URLs."),
    projection: Path = typer.Option(..., "--projection", "-p", help="Projection directory made by `curate train`."),
    out: str = typer.Option(..., "--out", "-o", metavar="RUN_DIR", help="Run directory or URL: writes scores/ (and embeddings/ for new shards)."),
    device: str = typer.Option(SCORE.device, help="auto, cpu or cuda."),
    batch_size: int = typer.Option(SCORE.batch_size, help="Pairs per encoder batch, for shards not yet embedded."),
    workers: int = typer.Option(SCORE.workers, help="Decode worker processes, for shards not yet embedded."),
    format: Optional[str] = typer.Option(None, "--format", help="Force a shard format instead of detecting it."),
    overwrite: bool = typer.Option(False, help="Rescore shards already scored by this projection (never re-embeds)."),
    executor: str = EXECUTOR,
    ray_address: Optional[str] = RAY_ADDRESS,
    num_cpus_per_worker: float = CPUS_PER_WORKER,
    num_gpus_per_worker: float = GPUS_PER_WORKER,
    concurrency: Optional[int] = CONCURRENCY,
    max_retries: int = MAX_RETRIES,
    quiet: bool = QUIET,
) -> None:
    """Score every pair: embeddings (made only where missing) + projection -> RUN_DIR/scores/."""
    from curate.cli.summaries import score_table
    from curate.console import setup_logging, stdout
    from curate.pipelines.score import run_score

    setup_logging(quiet=quiet)
    config = ScoreConfig(
        inputs=tuple(inputs), projection=projection, out=out, device=device, batch_size=batch_size,
        workers=workers, format=format, overwrite=overwrite,
        executor=executor_config(executor, ray_address, num_cpus_per_worker, num_gpus_per_worker, concurrency, max_retries),
    )
    stdout.print(score_table(run_score(config, quiet=quiet)))


STATS = StatsConfig()


@app.command()
@reports_errors
def stats(
    run_dir: Path = typer.Argument(..., help="Scored run directory (reads RUN_DIR/scores/)."),
    threshold: Optional[list[float]] = typer.Option(
        None, "--threshold", "-t", help=f"A --min-sim value to count pairs kept at (repeatable) [default: {', '.join(map(str, STATS.thresholds))}]."
    ),
    bins: int = typer.Option(STATS.bins, help="Histogram bars."),
    json_out: bool = typer.Option(False, "--json", help="Print machine-readable JSON on stdout instead of tables."),
) -> None:
    """Count, mean, spread, quantiles, histogram and threshold counts of a run's similarity."""
    import json
    import sys

    from curate.cli.summaries import stats_tables
    from curate.console import setup_logging, stdout
    from curate.pipelines.stats import run_stats

    setup_logging()
    config = StatsConfig(run=run_dir, thresholds=tuple(threshold) if threshold else STATS.thresholds, bins=bins, json=json_out)
    result = run_stats(config)
    if config.json:
        sys.stdout.write(json.dumps(result.to_json(), indent=2) + "\n")
        return
    for table in stats_tables(result):
        stdout.print(table)


# --- curate prompts ...: the prompt-writing language models ----------------------------------

from curate.schemas.config import (  # noqa: E402  (kept beside the commands that use them)
    ConceptTrainConfig,
    PromptsEvalConfig,
    PromptsGenerateConfig,
    PromptsPrepareConfig,
    PromptTags,
    PromptTrainConfig,
    UpsampleTrainConfig,
)

prompts_app = typer.Typer(help="Prompt-writing language models: prepare, train, generate, eval.", no_args_is_help=True)
prompts_train_app = typer.Typer(help="Fine-tune a prompt model: `concept` (GPT-2) or `upsample` (FLAN-T5).",
                                no_args_is_help=True)
app.add_typer(prompts_app, name="prompts")
prompts_app.add_typer(prompts_train_app, name="train")
PREP = PromptsPrepareConfig()
CONCEPT = ConceptTrainConfig()
UPSAMPLE = UpsampleTrainConfig()
GEN = PromptsGenerateConfig()
PEVAL = PromptsEvalConfig()


@prompts_app.command("prepare")
@reports_errors
def prompts_prepare(
    inputs: list[Path] = typer.Argument(..., help="A subset folder, shards, or CSV/Parquet/`datasets` tables of prompts or pairs."),
    out: Path = typer.Option(..., "--out", "-o", help="Folder for train/validation/test.parquet and prompts-report.json."),
    blocklist: Optional[Path] = typer.Option(None, help="Word list (one term per line) replacing the shipped one."),
    start_tag: str = typer.Option(PREP.tags.start, help="Tag opening every prompt."),
    end_tag: str = typer.Option(PREP.tags.end, help="Tag closing every prompt."),
    validation_fraction: float = typer.Option(PREP.validation_fraction, help="Share of prompts held out for validation."),
    test_fraction: float = typer.Option(PREP.test_fraction, help="Share of prompts held out for testing."),
    text_column: Optional[str] = typer.Option(None, help="Table column with the (detailed) prompt."),
    plain_column: Optional[str] = typer.Option(None, help="Table column with the basic prompt of a pair."),
    min_words: int = typer.Option(PREP.min_words, help="Drop prompts with fewer words."),
    overwrite: bool = typer.Option(False, help="Redo a folder that is already prepared."),
    quiet: bool = QUIET,
) -> None:
    """Clean, dedup, blocklist, tag and split prompts; reports what was removed and why."""
    from curate.console import setup_logging, stdout
    from curate.prompt_lms.prepare import run_prepare
    from curate.prompt_lms.tables import prepare_table

    setup_logging(quiet=quiet)
    config = PromptsPrepareConfig(
        inputs=tuple(inputs), out=out, blocklist=blocklist, tags=PromptTags(start=start_tag, end=end_tag),
        validation_fraction=validation_fraction, test_fraction=test_fraction, text_column=text_column,
        plain_column=plain_column, min_words=min_words, overwrite=overwrite,
    )
    stdout.print(prepare_table(run_prepare(config)))


def _train(config: PromptTrainConfig, quiet: bool) -> None:
    from curate.console import setup_logging, stdout
    from curate.prompt_lms.tables import train_table
    from curate.prompt_lms.train import run_train

    setup_logging(quiet=quiet)
    stdout.print(train_table(run_train(config)))


def _train_command(doc: str, defaults: PromptTrainConfig, config_type: type[PromptTrainConfig]) -> Callable[..., None]:
    """One `train` subcommand; the two recipes share options and differ only in defaults."""

    @reports_errors
    def command(
        data: list[Path] = typer.Argument(..., help="A folder `prompts prepare` wrote, or a subset/table to prepare first."),
        out: Path = typer.Option(..., "--out", "-o", help="Model folder: best model, card.json, curves, checkpoints/last."),
        base: str = typer.Option(defaults.base, help="Base model: hub id or local directory."),
        epochs: int = typer.Option(defaults.epochs),
        batch_size: int = typer.Option(defaults.batch_size),
        grad_accum: int = typer.Option(defaults.grad_accum, help="Batches per optimizer step."),
        lr: float = typer.Option(defaults.lr, help="Peak learning rate (linear warm-up and decay)."),
        trainable_layers: Optional[int] = typer.Option(defaults.trainable_layers, help="Train only the top N blocks (unset: all)."),
        max_tokens: int = typer.Option(defaults.max_tokens, help="Texts are truncated to this many tokens."),
        precision: str = typer.Option(defaults.precision, help="auto, fp32, bf16 or fp16 (fp16: concept only)."),
        eval_samples: int = typer.Option(defaults.eval_samples, help="Upsample: validation pairs scored with METEOR each epoch."),
        device: str = typer.Option(defaults.device, help="auto, cpu or cuda."),
        seed: int = typer.Option(defaults.seed),
        resume: bool = typer.Option(False, help="Continue from OUT/checkpoints/last."),
        quiet: bool = QUIET,
    ) -> None:
        _train(config_type(
            data=tuple(data), out=out, base=base, epochs=epochs, batch_size=batch_size, grad_accum=grad_accum, lr=lr,
            trainable_layers=trainable_layers, max_tokens=max_tokens, precision=precision, eval_samples=eval_samples,
            device=device, seed=seed, resume=resume,
        ), quiet)

    command.__doc__ = doc
    return command


prompts_train_app.command("concept")(_train_command(
    "Fine-tune a causal LM (GPT-2) to write a whole tagged prompt after `<start> subject`.", CONCEPT, ConceptTrainConfig))
prompts_train_app.command("upsample")(_train_command(
    "Fine-tune a seq2seq model (FLAN-T5) to turn plain prompts into detailed ones.", UPSAMPLE, UpsampleTrainConfig))


@prompts_app.command("generate")
@reports_errors
def prompts_generate(
    model: Path = typer.Argument(..., help="A folder `curate prompts train` wrote."),
    texts: list[str] = typer.Argument(..., help="Subjects (concept model) or plain prompts (upsampler)."),
    num: int = typer.Option(GEN.num, "-n", "--num", help="Prompts per text."),
    max_length: Optional[int] = typer.Option(None, help="Most new tokens (default: the recipe's)."),
    min_length: Optional[int] = typer.Option(None, help="Fewest new tokens (default: the recipe's; upsample 40)."),
    temperature: Optional[float] = typer.Option(None, help="Sampling temperature (default: the recipe's)."),
    top_p: Optional[float] = typer.Option(None, help="Nucleus sampling mass (default: the recipe's)."),
    repetition_penalty: Optional[float] = typer.Option(None, help="Default: the recipe's (upsample 1.4)."),
    seed: int = typer.Option(GEN.seed),
    batch_size: int = typer.Option(GEN.batch_size, help="Texts per generation batch."),
    device: str = typer.Option(GEN.device, help="auto, cpu or cuda."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Write prompts to this file instead of stdout."),
    quiet: bool = QUIET,
) -> None:
    """Write prompts: `curate prompts generate models/concept2prompt "a lighthouse" -n 5`."""
    from curate.console import setup_logging, stdout
    from curate.prompt_lms.generate import run_generate

    setup_logging(quiet=quiet)
    config = PromptsGenerateConfig(
        model=model, texts=tuple(texts), num=num, max_length=max_length, min_length=min_length,
        temperature=temperature, top_p=top_p, repetition_penalty=repetition_penalty, seed=seed,
        batch_size=batch_size, device=device, out=out,
    )
    made = run_generate(config)
    if out is None:
        for generation in made:
            stdout.print(generation.text, markup=False, highlight=False, soft_wrap=True)


@prompts_app.command("eval")
@reports_errors
def prompts_eval(
    model: Path = typer.Argument(..., help="A folder `curate prompts train` wrote."),
    data: Path = typer.Argument(..., help="A prepared table (e.g. data/prompts/test.parquet) or its folder."),
    score_model: str = typer.Option(PEVAL.score_model, help="BERTScore encoder: hub id or local directory."),
    limit: int = typer.Option(PEVAL.limit, help="Held-out prompts used (upsample)."),
    subjects: int = typer.Option(PEVAL.subjects, help="Subjects generated for (concept)."),
    num: int = typer.Option(PEVAL.num, "-n", "--num", help="Generations per input."),
    seed: int = typer.Option(PEVAL.seed),
    batch_size: int = typer.Option(PEVAL.batch_size),
    device: str = typer.Option(PEVAL.device, help="auto, cpu or cuda."),
    max_length: Optional[int] = typer.Option(None, help="Most new tokens (default: the recipe's)."),
    min_length: Optional[int] = typer.Option(None, help="Fewest new tokens (default: the recipe's; upsample 40)."),
    json: bool = typer.Option(False, "--json", help="Print the result as JSON instead of a table."),
    quiet: bool = QUIET,
) -> None:
    """Score generations: BERTScore, METEOR, length, distinct-n, subject faithfulness."""
    import dataclasses
    import json as jsonlib

    from curate.console import setup_logging, stdout
    from curate.prompt_lms.eval import run_eval
    from curate.prompt_lms.tables import eval_table

    setup_logging(quiet=quiet)
    config = PromptsEvalConfig(model=model, data=data, score_model=score_model, limit=limit, subjects=subjects,
                               num=num, seed=seed, batch_size=batch_size, device=device, json=json,
                               max_length=max_length, min_length=min_length)
    result = run_eval(config)
    if json:
        stdout.print_json(jsonlib.dumps(dataclasses.asdict(result)))
    else:
        stdout.print(eval_table(result))


from curate.schemas.config import (  # noqa: E402  (kept beside the commands that use them)
    CaptionEvalConfig,
    CaptionGenerateConfig,
    CaptionTrainConfig,
    DecodeConfig,
)

caption_app = typer.Typer(help="The image-to-prompt captioner (ResNet + GPT-2): train, generate, eval.", no_args_is_help=True)
app.add_typer(caption_app, name="caption")
CTRAIN = CaptionTrainConfig()
CGEN = CaptionGenerateConfig()
CEVAL = CaptionEvalConfig()
DECODE = DecodeConfig()
MAX_LENGTH = typer.Option(DECODE.max_length, help="Most tokens a generated prompt may have.")
NUM_BEAMS = typer.Option(DECODE.num_beams, help="Beam search width (1: greedy unless --sample).")
SAMPLE = typer.Option(False, "--sample", help="Nucleus sampling instead of greedy/beam decoding.")
TOP_P = typer.Option(DECODE.top_p, help="Sampling: keep the smallest token set with this probability mass.")
TEMPERATURE = typer.Option(DECODE.temperature, help="Sampling: softmax temperature.")
REPETITION = typer.Option(DECODE.repetition_penalty, help="Penalty on repeated tokens (1.0: none).")
DECODE_SEED = typer.Option(DECODE.seed, "--seed", help="Sampling seed (same seed, same prompts).")


@caption_app.command("train")
@reports_errors
def caption_train(
    subset: Path = typer.Argument(..., help="A subset folder or shards (any format `curate filter` writes)."),
    out: Path = typer.Option(..., "--out", "-o", help="Folder for best/ and last/ checkpoints, history.csv, loss.png."),
    decoder: str = typer.Option(CTRAIN.decoder, help="GPT-2-family decoder: hub id or local directory."),
    image_model: str = typer.Option(CTRAIN.image_model, help="Image encoder: hub id or local directory."),
    from_embeddings: Optional[Path] = typer.Option(None, help="Run directory whose stored image_emb vectors replace the image encoder."),
    finetune_image: bool = typer.Option(False, "--finetune-image", help="Train the image encoder too (default: frozen)."),
    epochs: int = typer.Option(CTRAIN.epochs, help="Epochs in all (a resumed run trains up to this many)."),
    batch_size: int = typer.Option(CTRAIN.batch_size, help="Pairs per batch."),
    grad_accum: int = typer.Option(CTRAIN.grad_accum, help="Batches per optimiser step."),
    lr: float = typer.Option(CTRAIN.lr, help="Adam learning rate."),
    val_fraction: float = typer.Option(CTRAIN.val_fraction, help="Share of pairs (by key hash) held out for validation."),
    max_tokens: int = typer.Option(CTRAIN.max_tokens, help="Prompt tokens kept for training."),
    seed: int = typer.Option(CTRAIN.seed, help="Seed for initialisation and shuffling."),
    device: str = typer.Option(CTRAIN.device, help="auto, cpu or cuda."),
    workers: int = typer.Option(CTRAIN.workers, help="Decode worker processes (0: decode in the main process)."),
    format: Optional[str] = typer.Option(None, "--format", help="Force a shard format instead of detecting it."),
    limit: Optional[int] = typer.Option(None, help="Use at most this many pairs (for a quick try)."),
    resume: bool = typer.Option(False, "--resume", help="Continue from OUT/last/ (optimiser and RNG state included)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Discard a captioner already in OUT."),
    quiet: bool = QUIET,
) -> None:
    """Train the captioner on a subset; keeps the best checkpoint by validation loss."""
    from curate.captioner.tables import train_table
    from curate.captioner.train import run_caption_train
    from curate.console import setup_logging, stdout

    setup_logging(quiet=quiet)
    config = CaptionTrainConfig(
        subset=subset, out=out, decoder=decoder, image_model=image_model, from_embeddings=from_embeddings,
        finetune_image=finetune_image, epochs=epochs, batch_size=batch_size, grad_accum=grad_accum, lr=lr,
        val_fraction=val_fraction, max_tokens=max_tokens, seed=seed, device=device, workers=workers,
        format=format, limit=limit, resume=resume, overwrite=overwrite,
    )
    stdout.print(train_table(run_caption_train(config, quiet=quiet)))


@caption_app.command("generate")
@reports_errors
def caption_generate(
    model: Path = typer.Argument(..., help="A captioner folder (`caption train --out`) or one of its checkpoints."),
    inputs: list[Path] = typer.Argument(..., help="Image files, or subset folders and shards."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Write .csv or .parquet here (default: CSV on stdout)."),
    max_length: int = MAX_LENGTH, num_beams: int = NUM_BEAMS, sample: bool = SAMPLE, top_p: float = TOP_P,
    temperature: float = TEMPERATURE, repetition_penalty: float = REPETITION, seed: int = DECODE_SEED,
    batch_size: int = typer.Option(CGEN.batch_size, help="Images per batch."),
    device: str = typer.Option(CGEN.device, help="auto, cpu or cuda."),
    workers: int = typer.Option(CGEN.workers, help="Decode worker processes (0: decode in the main process)."),
    format: Optional[str] = typer.Option(None, "--format", help="Force a shard format instead of detecting it."),
    limit: Optional[int] = typer.Option(None, help="Caption at most this many images."),
    quiet: bool = QUIET,
) -> None:
    """Write a prompt for every image: key, prompt, reference (from subsets), error."""
    from curate.captioner.generate import run_caption_generate
    from curate.console import setup_logging

    setup_logging(quiet=quiet)
    decoding = DecodeConfig(max_length=max_length, num_beams=num_beams, sample=sample, top_p=top_p,
                            temperature=temperature, repetition_penalty=repetition_penalty, seed=seed)
    config = CaptionGenerateConfig(model=model, inputs=tuple(inputs), out=out, decoding=decoding, batch_size=batch_size,
                                   device=device, workers=workers, format=format, limit=limit)
    run_caption_generate(config, quiet=quiet)


@caption_app.command("eval")
@reports_errors
def caption_eval(
    model: Path = typer.Argument(..., help="A captioner folder (`caption train --out`) or one of its checkpoints."),
    subset: Path = typer.Argument(..., help="Held-out pairs: a subset folder or shards."),
    text_model: str = typer.Option(CEVAL.text_model, help="Text encoder for the prompt-embedding cosine."),
    projection: Optional[Path] = typer.Option(None, help="Projection folder: also score generated prompts against their images."),
    max_length: int = MAX_LENGTH, num_beams: int = NUM_BEAMS, sample: bool = SAMPLE, top_p: float = TOP_P,
    temperature: float = TEMPERATURE, repetition_penalty: float = REPETITION, seed: int = DECODE_SEED,
    batch_size: int = typer.Option(CEVAL.batch_size, help="Pairs per batch."),
    device: str = typer.Option(CEVAL.device, help="auto, cpu or cuda."),
    workers: int = typer.Option(CEVAL.workers, help="Decode worker processes (0: decode in the main process)."),
    format: Optional[str] = typer.Option(None, "--format", help="Force a shard format instead of detecting it."),
    limit: Optional[int] = typer.Option(None, help="Evaluate at most this many pairs."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Per-pair figures to this .csv or .parquet."),
    json: bool = typer.Option(False, "--json", help="Print the figures as JSON instead of a table."),
    quiet: bool = QUIET,
) -> None:
    """BLEU, METEOR and embedding cosine of generated vs reference prompts (+ alignment under --projection)."""
    import json as json_lib

    from curate.captioner.eval import run_caption_eval
    from curate.captioner.tables import eval_table
    from curate.console import setup_logging, stdout

    setup_logging(quiet=quiet)
    decoding = DecodeConfig(max_length=max_length, num_beams=num_beams, sample=sample, top_p=top_p,
                            temperature=temperature, repetition_penalty=repetition_penalty, seed=seed)
    config = CaptionEvalConfig(model=model, subset=subset, decoding=decoding, text_model=text_model, projection=projection,
                               batch_size=batch_size, device=device, workers=workers, format=format, limit=limit,
                               json=json, out=out)
    summary = run_caption_eval(config, quiet=quiet)
    if json:
        stdout.print_json(json_lib.dumps(summary.to_json()))
    else:
        stdout.print(eval_table(summary))


# --- curate index / search / dedup: the FAISS vector store -----------------------------------

from curate.schemas.config import DedupConfig, IndexConfig, SearchConfig  # noqa: E402

INDEX, SEARCH, DEDUP = IndexConfig(), SearchConfig(), DedupConfig()


@app.command()
@reports_errors
def index(
    run_dir: Path = typer.Argument(..., help="Run directory whose embeddings/ are indexed (writes RUN_DIR/index/)."),
    projection: Path = typer.Option(..., "--projection", "-p", help="Projection directory made by `curate train`."),
    max_index_memory: str = typer.Option(INDEX.max_index_memory, help="Memory budget per index, e.g. 512MB, 2GB, 16GiB."),
    index_type: str = typer.Option(INDEX.index_type, help="auto, flat, ivf-flat, ivf-pq or hnsw."),
    target_recall: float = typer.Option(INDEX.target_recall, help="recall@10 the search settings are tuned to reach."),
    recall_queries: int = typer.Option(INDEX.recall_queries, help="Indexed vectors searched exactly to measure recall."),
    device: str = typer.Option(INDEX.device, help="auto (GPU FAISS when installed and a GPU is present), cpu or cuda."),
    overwrite: bool = typer.Option(False, help="Rebuild an existing index."),
    quiet: bool = QUIET,
) -> None:
    """Build FAISS indexes over the projected image and text vectors: RUN_DIR/index/."""
    from curate.cli.summaries import index_table
    from curate.console import setup_logging, stdout
    from curate.pipelines.index import run_index

    setup_logging(quiet=quiet)
    config = IndexConfig(
        run_dir=run_dir, projection=projection, max_index_memory=max_index_memory, index_type=index_type,
        target_recall=target_recall, recall_queries=recall_queries, device=device, overwrite=overwrite,
    )
    stdout.print(index_table(run_index(config, quiet=quiet)))


@app.command()
@reports_errors
def search(
    run_dir: Path = typer.Argument(..., help="Run directory with an index (made by `curate index`)."),
    text: Optional[str] = typer.Option(None, "--text", help="Find the pairs whose images show this."),
    image: Optional[Path] = typer.Option(None, "--image", help="Find the pairs whose images look like this file."),
    k: int = typer.Option(SEARCH.k, "-k", help="How many pairs to return."),
    target: str = typer.Option(SEARCH.target, help="Index searched: image (default) or text (captions)."),
    json: bool = typer.Option(False, "--json", help="Print JSON on stdout instead of a table."),
    device: str = typer.Option(SEARCH.device, help="auto, cpu or cuda (encoders and FAISS)."),
) -> None:
    """The pairs nearest in meaning to a text or an image query, best first."""
    from curate.console import setup_logging, stdout
    from curate.index.display import hits_json, hits_table
    from curate.pipelines.search import run_search

    setup_logging(quiet=True)
    result = run_search(SearchConfig(run_dir=run_dir, text=text, image=image, k=k, target=target, json=json, device=device))
    if json:
        stdout.out(hits_json(result.hits, query=result.query), highlight=False)
    else:
        stdout.print(hits_table(result.hits, title=f"curate search ({result.seconds:.2f}s)"))


@app.command()
@reports_errors
def dedup(
    run_dir: Path = typer.Argument(..., help="Run directory with an index (made by `curate index`)."),
    threshold: float = typer.Option(DEDUP.threshold, help="Cosine of projected image vectors at or above which two images are one."),
    neighbours: int = typer.Option(DEDUP.neighbours, help="Nearest images each image is compared with."),
    device: str = typer.Option(DEDUP.device, help="auto, cpu or cuda (FAISS)."),
    overwrite: bool = typer.Option(False, help="Redo an existing dedup table."),
    quiet: bool = QUIET,
) -> None:
    """Group near-duplicate images, keep the best-aligned of each: RUN_DIR/dedup/."""
    from curate.cli.summaries import dedup_table
    from curate.console import setup_logging, stdout
    from curate.pipelines.dedup import run_dedup

    setup_logging(quiet=quiet)
    config = DedupConfig(run_dir=run_dir, threshold=threshold, neighbours=neighbours, device=device, overwrite=overwrite)
    stdout.print(dedup_table(run_dedup(config, quiet=quiet)))


if __name__ == "__main__":
    app()
