"""Saving and loading captioner checkpoints as `save_pretrained`-style folders.

A folder holds the decoder (`gpt2/`, via `save_pretrained`), its tokenizer, the prefix
mapper in safetensors, the image tower unless it is a hub id (`image/`), and `card.json`, so
it loads wherever it is copied. It is written under a temporary name and swapped into place,
so a run killed mid-save leaves the previous checkpoint whole. Every file is read through a
loader that names it when it is damaged.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from curate.captioner.card import (
    CARD_FILE,
    DECODER_DIR,
    IMAGE_DIR,
    PREFIX_FILE,
    TOKENIZER_DIR,
    CaptionerCard,
    CaptionerLayout,
    ImageSource,
)
from curate.captioner.model import Captioner, PrefixMapper, load_decoder, load_tokenizer
from curate.errors import CurateError
from curate.io.atomic import atomic_dir
from curate.models.model_files import load_safetensors


def damaged_hint(folder: Path) -> str:
    """What to do when a file of a saved checkpoint cannot be read."""
    return (f"the captioner checkpoint {folder} is damaged or incomplete; copy it again or retrain it with "
            "`curate caption train`")


def save_checkpoint(
    folder: Path, model: Captioner, card: CaptionerCard, *, image_tower: Any = None, extra: dict[str, Any] | None = None
) -> None:
    """Write the whole checkpoint beside `folder`, then swap it in; `extra` adds torch-saved files."""
    from safetensors.torch import save_file

    if (card.image_source == ImageSource.BUNDLED) != (image_tower is not None):
        wanted = "an" if image_tower is None else "no"
        raise ValueError(f"a card with image_source {card.image_source!r} needs {wanted} image tower to save")
    with atomic_dir(Path(folder)) as tmp:
        model.decoder.save_pretrained(tmp / DECODER_DIR)
        model.tokenizer.save_pretrained(tmp / TOKENIZER_DIR)
        state = {k: v.detach().cpu().contiguous() for k, v in model.mapper.state_dict().items()}
        save_file(state, str(tmp / PREFIX_FILE), metadata={"image_dim": str(model.mapper.image_dim)})
        if image_tower is not None:  # anything with `save(folder)`: the trained tower, or a local frozen one
            image_tower.save(tmp / IMAGE_DIR)
        for name, payload in (extra or {}).items():
            torch.save(payload, tmp / name)
        (tmp / CARD_FILE).write_text(json.dumps(card.to_json(), indent=2, sort_keys=True) + "\n")


def checkpoint_dir(path: Path) -> Path:
    """A checkpoint folder, or a training folder (its best checkpoint); one line otherwise."""
    path = Path(path)
    if (path / CARD_FILE).is_file():
        return path
    best = CaptionerLayout(path).best
    if (best / CARD_FILE).is_file():
        return best
    if not path.exists():
        raise CurateError(f"Captioner {path} does not exist; train one with `curate caption train`.")
    raise CurateError(f"{path} holds no captioner checkpoint ({CARD_FILE}); pass the --out folder of `curate caption train`.")


def read_card(folder: Path) -> CaptionerCard:
    path = Path(folder) / CARD_FILE
    try:
        return CaptionerCard.from_text(path.read_text())
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CurateError(f"{path} is not a valid captioner card ({type(exc).__name__}: {exc}).") from None


def load_checkpoint(path: Path, *, device: torch.device) -> tuple[Captioner, CaptionerCard, str]:
    """(captioner on `device`, its card, the image tower to load: hub id or folder)."""
    folder = checkpoint_dir(path)
    card = read_card(folder)
    hint = damaged_hint(folder)
    tokenizer = load_tokenizer(str(folder / TOKENIZER_DIR), hint=hint)
    decoder = load_decoder(str(folder / DECODER_DIR), hint=hint)
    width = decoder.get_input_embeddings().embedding_dim
    mapper = PrefixMapper(card.image_dim, width, hidden=card.prefix_hidden, length=card.prefix_length)
    try:
        mapper.load_state_dict(load_safetensors(folder / PREFIX_FILE, hint=hint), strict=True)
    except RuntimeError as exc:  # readable, but not the mapper the card describes
        first = str(exc).splitlines()[0]
        raise CurateError(f"{folder / PREFIX_FILE} does not fit {folder / CARD_FILE} ({first}): {hint}.") from None
    model = Captioner(mapper, decoder, tokenizer).to(device).eval()
    return model, card, image_tower_of(folder, card)


def image_tower_of(folder: Path, card: CaptionerCard) -> str:
    """The image tower a checkpoint was trained on: its own copy, or the hub id it names."""
    if card.image_source == ImageSource.BUNDLED:
        if not (folder / IMAGE_DIR).is_dir():
            raise CurateError(f"{folder / IMAGE_DIR} is missing: {damaged_hint(folder)}.")
        return str(folder / IMAGE_DIR)
    return card.image_model
