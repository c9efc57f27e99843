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
from collections import Counter
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
    ImageSource,
)
from curate.captioner.config import CaptionTrainConfig
from curate.captioner.data import (
    CaptionPairs,
    collect_bytes,
    encode_samples,
    iter_samples,
    join_embeddings,
    refuse_empty,
    split_pairs,
)
from curate.captioner.image_tower import FrozenTowerCopy, TrainableImageTower
from curate.captioner.loss_curve import EpochLosses, plot_losses, write_history
from curate.captioner.model import (
    Captioner,
    PrefixMapper,
    encode_prompts,
    load_decoder,
    load_tokenizer,
)
from curate.captioner.store import damaged_hint, load_checkpoint, read_card, save_checkpoint
from curate.captioner.trainer import CaptionTrainer, TrainSplit
from curate.errors import CurateError
from curate.models.devices import resolve_device
from curate.models.image_encoder import ImageEncoder
from curate.models.loading import LOCAL, model_source
from curate.models.model_files import torch_load
from curate.models.preprocess import decode_batch
from curate.versions import library_versions

log = logging.getLogger("curate")


@dataclass
class ImageSide:
    """Where the captioner's image features come from, and what a checkpoint keeps of the tower."""

    name: str  # what the card records: the tower as given (hub id or folder), or the embeddings' encoder
    dim: int
    tower: TrainableImageTower | None  # set only when fine-tuning
    source: str = ImageSource.HUB  # BUNDLED: every checkpoint carries the tower in IMAGE_DIR
    bundle: Any = None  # what is saved into IMAGE_DIR (`save(folder)`): the trained or the local frozen tower


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
    # The decoder (or the checkpoint to resume) first: a wrong one should fail before the subset is encoded.
    resumed = _resume(source, device=device) if source else None
    decoder = None if source else _load_decoder(config.decoder)
    pairs, image = _load_pairs(config, device=device, resume_from=source)
    refuse_empty(pairs, config.subset)
    _say_sources(config.decoder if decoder else None, image)
    train, val = split_pairs(pairs, val_fraction=config.val_fraction)
    model, state = resumed or (_fresh_model(image=image, device=device, decoder=decoder, config=config), None)
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


def _load_decoder(name: str) -> tuple[Any, Any]:
    """(tokenizer, decoder) of --decoder; a path that is no folder is refused, not sent to the hub."""
    model_source(name, option="--decoder")
    return load_tokenizer(name), load_decoder(name)


def _say_sources(decoder: str | None, image: ImageSide) -> None:
    """Whether each model came from a local folder or the hub (a folder named like a hub id wins)."""
    if decoder is not None:
        local = Path(decoder).expanduser().is_dir()
        log.info("decoder: %s %s", "local folder" if local else "hub id", Path(decoder).resolve() if local else decoder)
    kept = "copied into each checkpoint" if image.source == ImageSource.BUNDLED else "named by its hub id in the card"
    log.info("image tower: %s (%s)", image.name, kept)


def _check_same_run(card: CaptionerCard, config: CaptionTrainConfig) -> None:
    """A resumed run must train the same thing it started with."""
    wanted = _hyper(config)
    for key in ("decoder", "image_model", "finetune_image", "from_embeddings", "max_tokens", "prefix_hidden",
                "prefix_length"):
        if card.hyper.get(key, 1 if key == "prefix_length" else None) != wanted[key]:
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
        "max_tokens": config.max_tokens, "prefix_hidden": config.prefix_hidden, "prefix_length": config.prefix_length,
        "lr": config.lr,
        "batch_size": config.batch_size, "grad_accum": config.grad_accum, "val_fraction": config.val_fraction,
        "seed": config.seed, "subset": str(config.subset),
    }


def _load_pairs(
    config: CaptionTrainConfig, *, device: torch.device, resume_from: Path | None
) -> tuple[CaptionPairs, ImageSide]:
    """Read the subset once: stored vectors, features of the frozen tower, or bytes for a trained one."""
    skipped: Counter[str] = Counter()
    samples = iter_samples([Path(config.subset)], format=config.format, skipped=skipped)
    if config.from_embeddings is not None:
        pairs, name = join_embeddings(samples, config.from_embeddings, limit=config.limit)
        dim = int(pairs.features.shape[1])  # type: ignore[union-attr]
        side, _ = _frozen_side(name, device=device, option="the run's image encoder", stored_dim=dim,
                               resume_from=resume_from)
        return pairs.left_out(skipped), side
    if config.finetune_image:
        source = str(resume_from / IMAGE_DIR) if resume_from else config.image_model
        tower = TrainableImageTower(ImageEncoder(source, device=device))
        side = ImageSide(name=config.image_model, dim=tower.dim, tower=tower, source=ImageSource.BUNDLED, bundle=tower)
        return collect_bytes(samples, limit=config.limit).left_out(skipped), side
    side, encoder = _frozen_side(config.image_model, device=device, option="--image-model", resume_from=resume_from)
    pairs = encode_samples(samples, encoder, batch_size=config.batch_size, workers=config.workers, limit=config.limit)
    return pairs.left_out(skipped), side


def _frozen_side(
    name: str, *, device: torch.device, option: str, stored_dim: int | None = None, resume_from: Path | None = None
) -> tuple[ImageSide, Any]:
    """A frozen tower and its encoder: a local folder's tower is copied into every checkpoint (so
    the checkpoint loads wherever it is copied), a hub id is only named. With stored vectors a hub
    tower is not loaded at all. A resumed run uses the checkpoint's own copy, wherever the folder
    it was copied from is now."""
    copied = resume_from / IMAGE_DIR if resume_from is not None else None
    if copied is not None and copied.is_dir():
        source, load_from = LOCAL, str(copied)
    else:
        source, load_from = model_source(name, option=option), name
    if source != LOCAL and stored_dim is not None:
        return ImageSide(name=name, dim=stored_dim, tower=None, source=ImageSource.HUB), None
    encoder = ImageEncoder(load_from, device=device)
    if stored_dim is not None and encoder.dim != stored_dim:
        raise CurateError(f"{option} {name} gives {encoder.dim}-d features, but the stored vectors are {stored_dim}-d.")
    if source != LOCAL:
        return ImageSide(name=name, dim=encoder.dim, tower=None, source=ImageSource.HUB), encoder
    side = ImageSide(name=name, dim=encoder.dim, tower=None, source=ImageSource.BUNDLED,
                     bundle=FrozenTowerCopy(encoder))
    return side, encoder


def _resume(folder: Path, *, device: torch.device) -> tuple[Captioner, dict]:
    """The last checkpoint and its training state (optimiser moments, RNG streams, history)."""
    model, _, _ = load_checkpoint(folder, device=device)
    return model, torch_load(folder / STATE_FILE, hint=damaged_hint(folder))


def _fresh_model(
    *, image: ImageSide, device: torch.device, decoder: tuple[Any, Any], config: CaptionTrainConfig
) -> Captioner:
    """A new prefix mapper on the pretrained (tokenizer, decoder)."""
    tokenizer, lm = decoder
    width = lm.get_input_embeddings().embedding_dim
    mapper = PrefixMapper(image.dim, width, hidden=config.prefix_hidden, length=config.prefix_length)
    return Captioner(mapper, lm, tokenizer).to(device)


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
        decoder=config.decoder, prefix_hidden=config.prefix_hidden, max_tokens=config.max_tokens,
        epoch=row.epoch, train_loss=row.train_loss, val_loss=row.val_loss, train_pairs=sizes[0],
        val_pairs=sizes[1], hyper=_hyper(config), versions=library_versions(), image_source=image.source,
        prefix_length=config.prefix_length,
    )
    bundle = image.bundle if image.source == ImageSource.BUNDLED else None
    if row.best:
        save_checkpoint(layout.best, trainer.model, card, image_tower=bundle)
    state = {"epoch": row.epoch, "trainer": trainer.state(), "history": [vars(r) for r in history]}
    save_checkpoint(layout.last, trainer.model, card, image_tower=bundle, extra={STATE_FILE: state})
    write_history(layout.history, history)
