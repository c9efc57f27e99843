"""`curate train`: a run's embeddings -> a projection directory (weights + card).

One streaming pass splits the pairs by key hash and spills them to memory-mapped files
(`train_data`); epochs then draw shuffled batches from the spill with a seeded generator
and the weights are initialised from a seeded generator of their own, so the same seed and
the same data give byte-identical weights (on one device type and thread count: float sums
may round differently elsewhere). Validation metrics are
computed on held-out pairs, at most `max_val_pairs` of them. The weights are written first
and the card last; the card carries the weights' sha256, so a half-replaced projection
directory is refused on load rather than silently mixed.
"""

from __future__ import annotations

import logging
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch

from curate.io.atomic import remove_stale_tmp
from curate.io.process import this_writer_tag
from curate.io.run_lock import hold
from curate.io.embeddings import embeddings_files
from curate.io.spill import PairVectors
from curate.models.alignment_metrics import alignment_metrics
from curate.models.devices import resolve_device
from curate.models.projection import (
    Projection,
    build_projection,
    save_card,
    save_weights,
)
from curate.pipelines.train_data import TrainingSplit, common_encoders, split_embeddings
from curate.schemas.config.flow import TrainConfig
from curate.schemas.projection import ProjectionCard, ValidationMetrics
from curate.schemas.tables import EncoderInfo
from curate.versions import library_versions

log = logging.getLogger("curate")
HYPER_FIELDS = ("dim", "epochs", "batch_size", "lr", "weight_decay", "val_fraction", "max_val_pairs")


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


def fit(model: Projection, train: PairVectors, config: TrainConfig, *, advance: Callable[[int], None]) -> list[float]:
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


def evaluate(model: Projection, val: PairVectors, config: TrainConfig) -> ValidationMetrics:
    """Alignment metrics on (at most `max_val_pairs`) held-out pairs."""
    model.eval()
    held_out = val.head(config.max_val_pairs)
    image = model.project_image(np.asarray(held_out.image, dtype=np.float32))
    text = model.project_text(np.asarray(held_out.text, dtype=np.float32))
    return alignment_metrics(image, text, seed=config.seed)


def fresh_model(split: TrainingSplit, config: TrainConfig, device: torch.device) -> Projection:
    """A seeded projection whose standardisers hold the train split's statistics."""
    model = build_projection(
        config.loss, image_dim=split.image_moments.dim, text_dim=split.text_moments.dim, dim=config.dim, seed=config.seed
    )
    model.image_norm.fit(*split.image_moments.mean_std())
    model.text_norm.fit(*split.text_moments.mean_std())
    return model.to(device)


def run_train(config: TrainConfig, *, quiet: bool = False) -> TrainResult:
    """Train a projection on `config.run_dir`'s embeddings and write it to `config.out`."""
    from curate.console import make_progress

    config.validate()
    start = time.perf_counter()
    files = embeddings_files(config.run_dir)
    image_info, text_info = common_encoders(files)
    device = resolve_device(config.device)
    with hold(config.out, "train") as since:  # one writer per projection folder
        remove_stale_tmp(config.out, settled_before=since)
        with tempfile.TemporaryDirectory(prefix=".spill-", suffix=f".{this_writer_tag()}.tmp", dir=config.out) as scratch:
            split = split_embeddings(files, Path(scratch), dims=(image_info.dim, text_info.dim),
                                     val_fraction=config.val_fraction)
            log.info("training a %s projection on %d pairs (%d held out) on %s", config.loss, len(split.train),
                     len(split.val), device)
            model = fresh_model(split, config, device)
            steps = config.epochs * batches_per_epoch(len(split.train), config.batch_size)
            with make_progress(unit="batches", quiet=quiet) as progress:
                task = progress.add_task(f"train {config.loss}", total=steps)
                losses = fit(model, split.train, config, advance=lambda n: progress.advance(task, n))
            metrics = evaluate(model, split.val, config)
        card = write_projection(model.cpu(), config, split=split, metrics=metrics, encoders=(image_info, text_info))
    return TrainResult(card, config.out, losses, time.perf_counter() - start)


def write_projection(model: Projection, config: TrainConfig, *, split: TrainingSplit, metrics: ValidationMetrics,
                     encoders: tuple[EncoderInfo, EncoderInfo]) -> ProjectionCard:
    """Weights first, card last (the card names the weights' sha256)."""
    fingerprint = save_weights(model, config.out)
    hyper = {name: value for name, value in asdict(config).items() if name in HYPER_FIELDS}
    card = ProjectionCard(
        loss=config.loss, image_encoder=encoders[0], text_encoder=encoders[1], out_dim=model.out_dim,
        temperature=model.temperature, hyper=hyper, seed=config.seed, data=split.data, metrics=metrics,
        fingerprint=fingerprint, versions=library_versions(),
    )
    save_card(card, config.out)
    return card
