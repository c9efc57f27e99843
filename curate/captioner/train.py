"""`curate caption train`: a subset -> a captioner folder (best and last checkpoints, loss log).

Per epoch: train, validate on the key-hash split, save `best/` when validation improved and
`last/` (with optimiser and RNG state), and rewrite `history.csv`; `loss.png` is drawn when
the run ends. `--resume` reloads `last/` and carries on from the next epoch, so a killed run
continues where its last checkpoint left it.
"""

from __future__ import annotations

import logging
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from curate.captioner.card import (
    CARD_FILE,
    IMAGE_DIR,
    STATE_FILE,
    CaptionerCard,
    CaptionerLayout,
)
from curate.captioner.config import CaptionTrainConfig
from curate.captioner.data import (
    CaptionPairs,
    collect_bytes,
    encode_samples,
    iter_samples,
    join_embeddings,
    split_pairs,
)
from curate.captioner.image_tower import TrainableImageTower
from curate.captioner.loss_curve import EpochLosses, plot_losses, write_history
from curate.captioner.model import (
    Captioner,
    PrefixMapper,
    encode_prompts,
    load_decoder,
    load_tokenizer,
)
from curate.captioner.store import load_checkpoint, read_card, save_checkpoint
from curate.captioner.trainer import CaptionTrainer, TrainSplit
from curate.errors import CurateError
from curate.models.devices import resolve_device
from curate.models.image_encoder import ImageEncoder
from curate.models.preprocess import decode_batch
from curate.versions import library_versions

log = logging.getLogger("curate")


@dataclass
class ImageSide:
    """Where the captioner's image features come from."""

    name: str  # what the card records: hub id, directory, or the embeddings' encoder
    dim: int
    tower: TrainableImageTower | None  # set only when fine-tuning


@dataclass
class CaptionTrainSummary:
    """What the command reports at the end."""

    out: Path
    train_pairs: int
    val_pairs: int
    skipped: int
    history: list[EpochLosses]
    resumed_from: int  # the epoch a resumed run started after; 0 for a fresh run
    seconds: float

    @property
    def best(self) -> EpochLosses:
        return min(self.history, key=lambda r: r.val_loss)


def run_caption_train(config: CaptionTrainConfig, *, quiet: bool = False) -> CaptionTrainSummary:
    """Train (or continue training) a captioner on `config.subset`."""
    config.validate()
    layout = CaptionerLayout(config.out)
    _prepare_out(layout, config)
    device = resolve_device(config.device)
    torch.manual_seed(config.seed)
    start = time.perf_counter()
    source = layout.last if config.resume else None
    # The decoder first: a wrong --decoder should fail before the whole subset is encoded.
    decoder = None if source else (load_tokenizer(config.decoder), load_decoder(config.decoder))
    pairs, image = _load_pairs(config, device=device, resume_from=source)
    train, val = split_pairs(pairs, val_fraction=config.val_fraction)
    model, state = _build_model(image=image, device=device, resume_from=source, decoder=decoder, config=config)
    if state is None:
        model.mapper.fit(_initial_features(train, image.tower))
    trainer = CaptionTrainer(model, tower=image.tower, lr=config.lr, batch_size=config.batch_size,
                             grad_accum=config.grad_accum, seed=config.seed)
    history: list[EpochLosses] = []
    if state is not None:
        trainer.load_state(state["trainer"])
        history = [EpochLosses(**row) for row in state["history"]]
    log.info("training on %d pairs, validating on %d (%d skipped) on %s", len(train), len(val), pairs.skipped, device)
    splits = (_split(model, train, config), _split(model, val, config))
    history = _epochs(trainer, splits, history=history, config=config, image=image, quiet=quiet)
    return CaptionTrainSummary(
        out=config.out, train_pairs=len(train), val_pairs=len(val), skipped=pairs.skipped, history=history,
        resumed_from=int(state["epoch"]) if state else 0, seconds=time.perf_counter() - start,
    )


def _prepare_out(layout: CaptionerLayout, config: CaptionTrainConfig) -> None:
    """Refuse to mix a new run into an old one, or to resume what is not there."""
    has_last = (layout.last / CARD_FILE).is_file()
    if config.resume and not has_last:
        raise CurateError(f"--resume: {layout.last} holds no checkpoint to continue from; drop --resume to start afresh.")
    if config.resume:
        _check_same_run(read_card(layout.last), config)
    elif config.overwrite:
        for folder in (layout.best, layout.last):
            shutil.rmtree(folder, ignore_errors=True)
        for path in (layout.history, layout.curve):
            path.unlink(missing_ok=True)
    elif has_last or (layout.best / CARD_FILE).is_file():
        raise CurateError(f"{layout.root} already holds a captioner; pass --resume to continue it or --overwrite to start over.")


def _check_same_run(card: CaptionerCard, config: CaptionTrainConfig) -> None:
    """A resumed run must train the same thing it started with."""
    wanted = _hyper(config)
    for key in ("decoder", "image_model", "finetune_image", "from_embeddings", "max_tokens", "prefix_hidden"):
        if card.hyper.get(key) != wanted[key]:
            option = "--" + key.replace("_", "-")
            raise CurateError(
                f"--resume: the checkpoint was trained with {option} {card.hyper.get(key)!r}, not {wanted[key]!r}; "
                "pass the same options, or --overwrite to start over."
            )


def _hyper(config: CaptionTrainConfig) -> dict[str, object]:
    """The settings recorded in the card (paths as strings, so the card is plain JSON)."""
    return {
        "decoder": config.decoder, "image_model": config.image_model, "finetune_image": config.finetune_image,
        "from_embeddings": str(config.from_embeddings) if config.from_embeddings else None,
        "max_tokens": config.max_tokens, "prefix_hidden": config.prefix_hidden, "lr": config.lr,
        "batch_size": config.batch_size, "grad_accum": config.grad_accum, "val_fraction": config.val_fraction,
        "seed": config.seed, "subset": str(config.subset),
    }


def _load_pairs(config: CaptionTrainConfig, *, device: torch.device, resume_from: Path | None) -> tuple[CaptionPairs, ImageSide]:
    """Read the subset once: stored vectors, features of the frozen tower, or bytes for a trained one."""
    samples = iter_samples([Path(config.subset)], format=config.format)
    if config.from_embeddings is not None:
        pairs, name = join_embeddings(samples, config.from_embeddings, limit=config.limit)
        return pairs, ImageSide(name=model_ref(name), dim=int(pairs.features.shape[1]), tower=None)  # type: ignore[union-attr]
    if config.finetune_image:
        source = str(resume_from / IMAGE_DIR) if resume_from else config.image_model
        tower = TrainableImageTower(ImageEncoder(source, device=device))
        return collect_bytes(samples, limit=config.limit), ImageSide(name=model_ref(config.image_model), dim=tower.dim, tower=tower)
    encoder = ImageEncoder(config.image_model, device=device)
    pairs = encode_samples(samples, encoder, batch_size=config.batch_size, workers=config.workers, limit=config.limit)
    return pairs, ImageSide(name=model_ref(config.image_model), dim=encoder.dim, tower=None)


def model_ref(name: str) -> str:
    """A local model directory as an absolute path (the card must work from any folder); hub ids as given."""
    path = Path(name)
    return str(path.resolve()) if path.is_dir() else name


def _build_model(
    *, image: ImageSide, device: torch.device, resume_from: Path | None, decoder: tuple[Any, Any] | None,
    config: CaptionTrainConfig,
) -> tuple[Captioner, dict | None]:
    """A fresh mapper on the pretrained (tokenizer, decoder), or the last checkpoint and its training state."""
    if resume_from is not None or decoder is None:
        model, _, _ = load_checkpoint(resume_from, device=device)  # type: ignore[arg-type]
        state = torch.load(resume_from / STATE_FILE, map_location="cpu", weights_only=False)  # type: ignore[operator]
        return model, state
    tokenizer, lm = decoder
    width = lm.get_input_embeddings().embedding_dim
    mapper = PrefixMapper(image.dim, width, hidden=config.prefix_hidden)
    return Captioner(mapper, lm, tokenizer).to(device), None


@torch.no_grad()
def _initial_features(pairs: CaptionPairs, tower: TrainableImageTower | None, *, most: int = 512) -> np.ndarray:
    """The features the prefix standardisation is fitted on: stored ones, or the untrained tower's."""
    if tower is None:
        return pairs.features  # type: ignore[return-value]
    decoded = decode_batch(pairs.images[:most], tower.preprocess)
    tower.eval()
    return tower(decoded.pixels).cpu().numpy()


def _split(model: Captioner, pairs: CaptionPairs, config: CaptionTrainConfig) -> TrainSplit:
    tokens = encode_prompts(model.tokenizer, pairs.texts, max_tokens=config.max_tokens)
    return TrainSplit(tokens=tokens, features=pairs.features, images=pairs.images)


def _epochs(
    trainer: CaptionTrainer, splits: tuple[TrainSplit, TrainSplit], *, history: list[EpochLosses],
    config: CaptionTrainConfig, image: ImageSide, quiet: bool,
) -> list[EpochLosses]:
    """Run the remaining epochs, checkpointing and logging after each."""
    from curate.console import make_progress

    train, val = splits
    first = len(history) + 1
    if first > config.epochs:
        log.info("already trained for %d epochs; raise --epochs to train further", len(history))
    with make_progress(unit="pairs", quiet=quiet) as progress:
        for epoch in range(first, config.epochs + 1):
            task = progress.add_task(f"epoch {epoch}/{config.epochs}", total=len(train))
            began = time.perf_counter()
            train_loss = trainer.train_epoch(train, epoch=epoch, advance=lambda n: progress.advance(task, n))
            val_loss = trainer.evaluate(val)
            best = not history or val_loss < min(r.val_loss for r in history)
            history.append(EpochLosses(epoch, train_loss, val_loss, round(time.perf_counter() - began, 3), best))
            _checkpoint(trainer, history, config=config, image=image, sizes=(len(train), len(val)))
            log.info("epoch %d: train loss %.4f, validation loss %.4f%s", epoch, train_loss, val_loss, " (best)" if best else "")
    if history:
        plot_losses(history, CaptionerLayout(config.out).curve)  # once per run: drawing costs as much as a small epoch
    return history


def _checkpoint(
    trainer: CaptionTrainer, history: list[EpochLosses], *, config: CaptionTrainConfig, image: ImageSide,
    sizes: tuple[int, int],
) -> None:
    """best/ when improved, then last/ (whose state marks the epoch done), then the log."""
    layout = CaptionerLayout(config.out)
    row = history[-1]
    card = CaptionerCard(
        image_model=image.name, image_dim=image.dim, image_finetuned=image.tower is not None,
        decoder=model_ref(config.decoder), prefix_hidden=config.prefix_hidden, max_tokens=config.max_tokens,
        epoch=row.epoch, train_loss=row.train_loss, val_loss=row.val_loss, train_pairs=sizes[0],
        val_pairs=sizes[1], hyper=_hyper(config), versions=library_versions(),
    )
    if row.best:
        save_checkpoint(layout.best, trainer.model, card, image_tower=image.tower)
    state = {"epoch": row.epoch, "trainer": trainer.state(), "history": [vars(r) for r in history]}
    save_checkpoint(layout.last, trainer.model, card, image_tower=image.tower, extra={STATE_FILE: state})
    write_history(layout.history, history)
