"""Where training state lives on disk: the best model (the model folder itself) and `last`.

OUT/ holds the best model by validation loss as `save_pretrained` files, its tokenizer and
`card.json` (written last). OUT/checkpoints/last/ holds the newest epoch's weights plus the
optimizer, scheduler, scaler and loop state, which is all `--resume` needs. Both are written
to a temporary folder and moved into place, so a kill never leaves a half-written one.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import torch

from curate.errors import CurateError
from curate.io.atomic import atomic_dir

LAST = Path("checkpoints") / "last"
STATE_FILE = "trainer_state.json"
OPTIM_FILE = "optimizer.pt"


def last_dir(out: Path) -> Path:
    return Path(out) / LAST


def save_last(out: Path, *, model: Any, tokenizer: Any, state: dict[str, Any], optim: dict[str, Any]) -> None:
    """Replace OUT/checkpoints/last with the current weights, tokenizer and loop state."""
    with atomic_dir(last_dir(out)) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        torch.save(optim, tmp / OPTIM_FILE)
        (tmp / STATE_FILE).write_text(json.dumps(state, indent=2))


def load_last(out: Path) -> tuple[Path, dict[str, Any], dict[str, Any]]:
    """(weights folder, loop state, optimizer/scheduler/scaler states) of the last checkpoint."""
    from curate.models.model_files import read_json, torch_load

    folder = last_dir(out)
    if not (folder / STATE_FILE).is_file():
        raise CurateError(f"--resume: no checkpoint in {folder}; train without --resume first.")
    hint = f"the checkpoint {folder} is damaged; train again without --resume into a new --out"
    return folder, read_json(folder / STATE_FILE, hint=hint), torch_load(folder / OPTIM_FILE, hint=hint)


def save_best(out: Path, *, model: Any, tokenizer: Any) -> None:
    """Move a fresh `save_pretrained` of model and tokenizer over the files in OUT."""
    out = Path(out)
    tmp = out / f".best.{os.getpid()}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    for item in tmp.iterdir():
        os.replace(item, out / item.name)
    tmp.rmdir()
