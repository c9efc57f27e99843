"""`curate train`: a run's embeddings -> a projection directory (weights + card).

One streaming pass splits the pairs by key hash and spills them to a memory-mapped file
(`train_data`); epochs then draw shuffled batches from the spill with a seeded generator
and the weights are initialised from a seeded generator of their own, so the same seed and
the same data give byte-identical weights (on one device type and thread count: float sums
may round differently elsewhere). Validation metrics are
computed on held-out pairs, at most `max_val_pairs` of them.

With `--folds K` (the default is 5), K more projections are trained the same way, projection
k on every pair outside fold k (`PROJ_DIR/folds/<k>/`, each a projection folder with its own
card, its metrics measured on fold k), so that `score` can give each pair the verdict of a
projection that never saw it (`curate.models.folds`). The fold folders are written first,
then the main weights, and the card last; the card carries the sha256 of the weights and of
every fold's weights, so a half-replaced projection directory is refused on load rather
than silently mixed.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch

from curate.io.atomic import remove_stale_tmp
from curate.io.process import this_writer_tag
from curate.io.run_lock import hold
from curate.io.embeddings import embeddings_files
from curate.io.spill import PairRows, PairVectors
from curate.models.alignment_metrics import alignment_metrics
from curate.models.devices import resolve_device
from curate.models.projection import (
    Projection,
    build_projection,
    save_card,
    save_weights,
)
from curate.pipelines.train_data import RunningMoments, TrainingSplit, common_encoders, split_embeddings
from curate.schemas.config.flow import TrainConfig
from curate.schemas.projection import FOLDS_DIR, FoldsInfo, ProjectionCard, TrainingData, ValidationMetrics
from curate.schemas.tables import EncoderInfo
from curate.versions import library_versions

log = logging.getLogger("curate")
HYPER_FIELDS = ("dim", "epochs", "batch_size", "lr", "weight_decay", "val_fraction", "max_val_pairs", "folds")
Moments = tuple[RunningMoments, RunningMoments]  # (image, text) statistics a model's standardisers take


@dataclass
class TrainResult:
    """What `run_train` made: the card (with metrics), where, and how the loss went."""

    card: ProjectionCard
    out: Path
    epoch_losses: list[float]
    seconds: float


def batch_rows(count: int, batch_size: int, rng: np.random.Generator) -> Iterator[np.ndarray]:
    """Shuffled row indices in batches; a final batch of one row is dropped (no negatives)."""
    order = rng.permutation(count)
    for start in range(0, count, batch_size):
        rows = order[start:start + batch_size]
        if len(rows) >= 2:
            yield rows


def batches_per_epoch(count: int, batch_size: int) -> int:
    """How many batches `batch_rows` yields, for the progress bar."""
    return count // batch_size + (1 if count % batch_size >= 2 else 0)


def optimiser(model: Projection, config: TrainConfig) -> torch.optim.Optimizer:
    """AdamW; weight decay on the projection matrices only, never on biases or the logit scale."""
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in params if p.ndim >= 2], "weight_decay": config.weight_decay},
        {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0},
    ]
    return torch.optim.AdamW([g for g in groups if g["params"]], lr=config.lr)


def fit(model: Projection, train: PairVectors | PairRows, config: TrainConfig, *,
        advance: Callable[[int], None]) -> list[float]:
    """Run the epochs; returns the mean loss of each epoch."""
    opt, rng, losses = optimiser(model, config), np.random.default_rng(config.seed), []
    device = model.device
    model.train()
    for epoch in range(config.epochs):
        total, steps = 0.0, 0
        for rows in batch_rows(len(train), config.batch_size, rng):
            image, text = (torch.from_numpy(a).to(device) for a in train.gather(rows))
            loss = model.loss(image, text)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            model.after_step()
            total, steps = total + float(loss.detach()), steps + 1
            advance(1)
        losses.append(total / max(steps, 1))
        log.debug("epoch %d/%d: loss %.4f", epoch + 1, config.epochs, losses[-1])
    return losses


def evaluate(model: Projection, val: PairVectors | PairRows, config: TrainConfig) -> ValidationMetrics:
    """Alignment metrics on (at most `max_val_pairs`) held-out pairs."""
    model.eval()
    held_out = val.head(config.max_val_pairs)
    image = model.project_image(np.asarray(held_out.image, dtype=np.float32))
    text = model.project_text(np.asarray(held_out.text, dtype=np.float32))
    return alignment_metrics(image, text, seed=config.seed)


def fresh_model(moments: Moments, config: TrainConfig, device: torch.device) -> Projection:
    """A seeded projection whose standardisers hold its training rows' statistics."""
    image, text = moments
    model = build_projection(config.loss, image_dim=image.dim, text_dim=text.dim, dim=config.dim, seed=config.seed)
    model.image_norm.fit(*image.mean_std())
    model.text_norm.fit(*text.mean_std())
    return model.to(device)


def run_train(config: TrainConfig, *, quiet: bool = False) -> TrainResult:
    """Train a projection (and its out-of-fold projections) on `config.run_dir`'s embeddings into `config.out`."""
    from curate.console import make_progress

    config.validate()
    start = time.perf_counter()
    files = embeddings_files(config.run_dir)
    encoders = common_encoders(files)
    device = resolve_device(config.device)
    with hold(config.out, "train") as since:  # one writer per projection folder
        remove_stale_tmp(config.out, settled_before=since)
        with tempfile.TemporaryDirectory(prefix=".spill-", suffix=f".{this_writer_tag()}.tmp", dir=config.out) as scratch:
            split = split_embeddings(files, Path(scratch), dims=(encoders[0].dim, encoders[1].dim),
                                     val_fraction=config.val_fraction, folds=config.folds)
            log.info("training a %s projection on %d pairs (%d held out)%s on %s", config.loss, len(split.train),
                     len(split.val), f" and {config.folds} out-of-fold ones" if config.folds > 1 else "", device)
            with make_progress(unit="batches", quiet=quiet) as progress:
                task = progress.add_task(f"train {config.loss}", total=total_steps(split, config))
                advance = lambda n: progress.advance(task, n)  # noqa: E731
                folds = train_folds(split, config, device=device, encoders=encoders, advance=advance)
                model = fresh_model((split.image_moments, split.text_moments), config, device)
                losses = fit(model, split.train, config, advance=advance)
            metrics = evaluate(model, split.val, config)
        card = write_projection(model.cpu(), config, data=split.data, metrics=metrics, encoders=encoders, folds=folds)
    return TrainResult(card, config.out, losses, time.perf_counter() - start)


def total_steps(split: TrainingSplit, config: TrainConfig) -> int:
    """Batches over every projection trained, for the progress bar."""
    sizes = [len(split.train)] + ([len(split.outside_fold(k)) for k in range(config.folds)] if config.folds > 1 else [])
    return config.epochs * sum(batches_per_epoch(n, config.batch_size) for n in sizes)


def train_folds(split: TrainingSplit, config: TrainConfig, *, device: torch.device,
                encoders: tuple[EncoderInfo, EncoderInfo], advance: Callable[[int], None]) -> FoldsInfo | None:
    """Train and write projection k on every pair outside fold k, for each fold; None without folds."""
    root = Path(config.out) / FOLDS_DIR
    if config.folds <= 1:
        shutil.rmtree(root, ignore_errors=True)  # a former training's folds: this card names none
        return None
    fingerprints, sizes = [], []
    for k in range(config.folds):
        model = fresh_model(split.moments_outside_fold(k), config, device)
        fit(model, split.outside_fold(k), config, advance=advance)
        held_out = split.inside_fold(k)
        data = replace(split.data, fingerprint=_fold_digest(split.data.fingerprint, k, config.folds),
                       train_pairs=len(split.outside_fold(k)), val_pairs=len(held_out))
        metrics = evaluate(model, held_out, config)
        card = write_projection(model.cpu(), replace(config, out=root / str(k)), data=data, metrics=metrics,
                                encoders=encoders, fold=k)
        fingerprints.append(card.fingerprint)
        sizes.append(len(held_out))
    for stale in (p for p in root.iterdir() if p.is_dir() and not (p.name.isdigit() and int(p.name) < config.folds)):
        shutil.rmtree(stale, ignore_errors=True)  # folds of a former training with more of them
    return FoldsInfo(count=config.folds, fingerprints=tuple(fingerprints), pairs=tuple(sizes))


def _fold_digest(data_fingerprint: str, fold: int, folds: int) -> str:
    return hashlib.sha256(f"{data_fingerprint}|fold {fold} of {folds}".encode()).hexdigest()


def write_projection(model: Projection, config: TrainConfig, *, data: TrainingData, metrics: ValidationMetrics,
                     encoders: tuple[EncoderInfo, EncoderInfo], folds: FoldsInfo | None = None,
                     fold: int | None = None) -> ProjectionCard:
    """Weights first, card last (the card names the weights' sha256, and its folds')."""
    fingerprint = save_weights(model, config.out)
    hyper = {name: value for name, value in asdict(config).items() if name in HYPER_FIELDS}
    if fold is not None:
        hyper["fold"] = fold
    card = ProjectionCard(
        loss=config.loss, image_encoder=encoders[0], text_encoder=encoders[1], out_dim=model.out_dim,
        temperature=model.temperature, hyper=hyper, seed=config.seed, data=data, metrics=metrics,
        fingerprint=fingerprint, versions=library_versions(), folds=folds,
    )
    save_card(card, config.out)
    return card
