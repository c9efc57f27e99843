"""A plain PyTorch training loop for the prompt models: accumulation, precision, checkpoints.

Plain rather than HF `Trainer` so every piece (freezing, resume, the best-by-validation
rule) is visible and testable. Shuffling and dropout are seeded per epoch from the run's
seed, and the optimizer, scheduler and scaler states travel in the checkpoint, so a run
resumed from `last` ends with the same weights as one that was never stopped.
"""

from __future__ import annotations

import math
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, ContextManager

import torch

from curate.console import log
from curate.prompt_lms.batches import Batcher, PromptRows, batch_indices
from curate.prompt_lms.checkpoints import save_best, save_last
from curate.prompt_lms.config import PromptTrainConfig
from curate.prompt_lms.history import (
    CURVES_PNG,
    HISTORY_CSV,
    draw_curves,
    write_history_csv,
)
from curate.prompt_lms.models import Precision

EpochMetrics = Callable[[Any], dict[str, float]]


@dataclass
class LoopState:
    """What the loop has done so far; saved with every checkpoint."""

    epoch: int = 0  # epochs completed
    step: int = 0  # optimizer steps taken
    best_loss: float | None = None
    best_epoch: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)

    def log(self, name: str, value: float) -> None:
        self.history.append({"step": self.step, "epoch": self.epoch, "name": name, "value": round(float(value), 6)})


@dataclass
class TrainParts:
    """Everything the loop works on, built by the pipeline."""

    model: Any
    tokenizer: Any
    batcher: Batcher
    train: PromptRows
    validation: PromptRows
    device: torch.device
    precision: Precision
    on_best: Callable[[LoopState], None]
    epoch_metrics: EpochMetrics | None = None


class PromptTrainer:
    """Runs epochs, keeps the best model by validation loss and the last checkpoint."""

    def __init__(self, parts: TrainParts, config: PromptTrainConfig) -> None:
        self.parts, self.config = parts, config
        params = [p for p in parts.model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
        total = config.epochs * self.steps_per_epoch
        warmup = int(total * config.warmup_fraction)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lambda s: _linear(s, warmup, total))
        self.scaler = torch.amp.GradScaler("cuda") if parts.precision.needs_scaler else None

    @property
    def steps_per_epoch(self) -> int:
        batches = math.ceil(len(self.parts.train) / self.config.batch_size)
        return max(1, math.ceil(batches / self.config.grad_accum))

    def optim_state(self) -> dict[str, Any]:
        scaler = self.scaler.state_dict() if self.scaler is not None else None
        return {"optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(), "scaler": scaler}

    def load_optim_state(self, states: dict[str, Any]) -> None:
        self.optimizer.load_state_dict(states["optimizer"])
        self.scheduler.load_state_dict(states["scheduler"])
        if self.scaler is not None and states.get("scaler"):
            self.scaler.load_state_dict(states["scaler"])

    def fit(self, state: LoopState, *, out: Path) -> LoopState:
        """Train the remaining epochs, checkpointing after each one."""
        for epoch in range(state.epoch, self.config.epochs):
            self.train_epoch(epoch, state)
            state.epoch = epoch + 1
            self.end_epoch(state, out=out)
        draw_curves(state.history, out / CURVES_PNG, title=f"{self.config.recipe}: {Path(self.config.base).name}")
        return state

    def train_epoch(self, epoch: int, state: LoopState) -> None:
        """One pass over the training rows, an optimizer step every `grad_accum` batches."""
        model, config = self.parts.model, self.config
        model.train()
        torch.manual_seed(config.seed * 1000 + epoch)  # dropout: same masks on a resumed run
        batches = list(batch_indices(len(self.parts.train), batch_size=config.batch_size, seed=config.seed * 1000 + epoch))
        running, seen = 0.0, 0
        for i, indices in enumerate(batches):
            loss = self._loss(self.parts.train, indices) / config.grad_accum
            self._backward(loss)
            running, seen = running + loss.item() * config.grad_accum, seen + 1
            if (i + 1) % config.grad_accum == 0 or i + 1 == len(batches):
                self._step()
                state.step += 1
                if state.step % config.log_every == 0 or i + 1 == len(batches):
                    state.log("train_loss", running / seen)
                    state.log("lr", self.scheduler.get_last_lr()[0])
                    running, seen = 0.0, 0

    def _loss(self, rows: PromptRows, indices: Any) -> torch.Tensor:
        batch = {k: v.to(self.parts.device) for k, v in self.parts.batcher(*rows.texts(indices)).items()}
        with self._autocast():
            return self.parts.model(**batch).loss.float()

    def _backward(self, loss: torch.Tensor) -> None:
        (self.scaler.scale(loss) if self.scaler is not None else loss).backward()

    def _step(self) -> None:
        params = [p for p in self.parts.model.parameters() if p.requires_grad]
        if self.scaler is not None:
            self.scaler.unscale_(self.optimizer)
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        if self.scaler is not None:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)

    def _autocast(self) -> ContextManager:
        dtype = self.parts.precision.dtype
        return nullcontext() if dtype is None else torch.autocast(device_type=self.parts.device.type, dtype=dtype)

    @torch.no_grad()
    def validation_loss(self) -> float:
        """Mean loss over the validation rows (row-weighted), in eval mode."""
        self.parts.model.eval()
        total, rows = 0.0, 0
        for indices in batch_indices(len(self.parts.validation), batch_size=self.config.batch_size, seed=None):
            total += self._loss(self.parts.validation, indices).item() * len(indices)
            rows += len(indices)
        return total / max(rows, 1)

    def end_epoch(self, state: LoopState, *, out: Path) -> None:
        """Validate, keep the best model, checkpoint `last`, rewrite the log and curves."""
        loss = self.validation_loss()
        state.log("validation_loss", loss)
        for name, value in (self.parts.epoch_metrics(self.parts.model) if self.parts.epoch_metrics else {}).items():
            state.log(name, value)
        log.info("epoch %d/%d: step %d, validation loss %.4f", state.epoch, self.config.epochs, state.step, loss)
        if state.best_loss is None or loss < state.best_loss:
            state.best_loss, state.best_epoch = loss, state.epoch
            save_best(out, model=self.parts.model, tokenizer=self.parts.tokenizer)
            self.parts.on_best(state)
        save_last(out, model=self.parts.model, tokenizer=self.parts.tokenizer, state=asdict(state), optim=self.optim_state())
        write_history_csv(state.history, out / HISTORY_CSV)  # the PNG is drawn once, when training ends


def _linear(step: int, warmup: int, total: int) -> float:
    """Linear warm-up to the full rate, then linear decay to zero at the last step."""
    if step < warmup:
        return (step + 1) / (warmup + 1)
    return max(0.0, (total - step) / max(1, total - warmup))
