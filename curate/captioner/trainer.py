"""Optimisation of the captioner: batches, gradient accumulation, mixed precision, RNG state.

Kept apart from the pipeline so the loop over tensors knows nothing of shards, folders or
logs. Frozen image features arrive as a matrix; a trained image tower gets decoded pixels.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch
from torch import Tensor

from curate.captioner.image_tower import TrainableImageTower
from curate.captioner.model import Captioner, pad_tokens
from curate.models.devices import autocast, autocast_dtype
from curate.models.preprocess import decode_batch


@dataclass
class TrainSplit:
    """One side of the split, ready for batching: token ids, and features or image bytes."""

    tokens: list[list[int]]
    features: np.ndarray | None
    images: list[bytes]

    def __len__(self) -> int:
        return len(self.tokens)


class CaptionTrainer:
    """Adam over the mapper, the decoder and (when fine-tuned) the image tower."""

    def __init__(
        self, model: Captioner, *, tower: TrainableImageTower | None, lr: float, batch_size: int,
        grad_accum: int, seed: int,
    ) -> None:
        self.model, self.tower = model, tower
        self.device = model.device
        self.batch_size, self.grad_accum, self.seed = batch_size, grad_accum, seed
        params = list(model.mapper.parameters()) + list(model.decoder.parameters())
        if tower is not None:
            params += list(tower.parameters())
        self.optimizer = torch.optim.Adam(params, lr=lr)
        fp16 = autocast_dtype(self.device) == torch.float16
        self.scaler = torch.amp.GradScaler("cuda", enabled=fp16)  # bf16 and fp32 need no loss scaling

    def batches(self, n: int, *, epoch: int) -> list[np.ndarray]:
        """Row indices per batch: a fresh shuffle per epoch, fixed by (seed, epoch) for resumes."""
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        order = torch.randperm(n, generator=generator).numpy()
        return [order[i:i + self.batch_size] for i in range(0, n, self.batch_size)]

    def train_epoch(self, split: TrainSplit, *, epoch: int, advance: Callable[[int], None]) -> float:
        """One pass over `split`; returns the mean loss per prompt token."""
        self.model.train()
        if self.tower is not None:
            self.tower.train()
        batches = self.batches(len(split), epoch=epoch)
        total, count = 0.0, 0
        self.optimizer.zero_grad(set_to_none=True)
        for step, rows in enumerate(batches, start=1):
            loss, tokens = self._loss(split, rows)
            self.scaler.scale(loss / self.grad_accum).backward()
            if step % self.grad_accum == 0 or step == len(batches):
                self.scaler.step(self.optimizer)
                self.scaler.update()
                self.optimizer.zero_grad(set_to_none=True)
            total += float(loss.detach()) * tokens
            count += tokens
            advance(len(rows))
        return total / max(count, 1)

    @torch.no_grad()
    def evaluate(self, split: TrainSplit) -> float:
        """Mean validation loss per prompt token (dropout off)."""
        self.model.eval()
        if self.tower is not None:
            self.tower.eval()
        total, count = 0.0, 0
        for start in range(0, len(split), self.batch_size):
            rows = np.arange(start, min(start + self.batch_size, len(split)))
            loss, tokens = self._loss(split, rows)
            total += float(loss) * tokens
            count += tokens
        return total / max(count, 1)

    def _loss(self, split: TrainSplit, rows: np.ndarray) -> tuple[Tensor, int]:
        features, kept = self._features(split, rows)
        if not kept:  # every image of the batch was undecodable
            return torch.zeros((), device=self.device, requires_grad=True), 0
        batch = pad_tokens([split.tokens[i] for i in kept], pad_id=self.model.tokenizer.pad_token_id)
        with autocast(self.device):
            return self.model.loss(features, batch.to(self.device))

    def _features(self, split: TrainSplit, rows: np.ndarray) -> tuple[Tensor, list[int]]:
        """Stored features, or pixels through the trained tower (undecodable images drop out)."""
        if split.features is not None:
            return torch.from_numpy(split.features[rows]).to(self.device), list(rows)
        assert self.tower is not None
        decoded = decode_batch([split.images[i] for i in rows], self.tower.preprocess)
        with autocast(self.device):
            return self.tower(decoded.pixels), [int(rows[i]) for i in decoded.ok]

    def state(self) -> dict[str, Any]:
        """What a resumed run needs beyond the weights: optimiser moments and RNG streams."""
        state = {"optimizer": self.optimizer.state_dict(), "scaler": self.scaler.state_dict(),
                 "torch_rng": torch.get_rng_state()}
        if torch.cuda.is_available():
            state["cuda_rng"] = torch.cuda.get_rng_state_all()
        return state

    def load_state(self, state: dict[str, Any]) -> None:
        self.optimizer.load_state_dict(state["optimizer"])
        self.scaler.load_state_dict(state["scaler"])
        torch.set_rng_state(state["torch_rng"])
        if "cuda_rng" in state and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda_rng"])

