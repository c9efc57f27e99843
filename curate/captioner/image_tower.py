"""An image tower that trains with the captioner (`--finetune-image`).

`ImageEncoder` is for inference (no gradients); this wraps the same loaded backbone and the
same uint8-in, normalise-on-device convention, but lets gradients through. Batch-norm
statistics stay frozen (eval mode): captioner batches are too small to re-estimate them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from curate.models.image_encoder import ImageEncoder


class TrainableImageTower(nn.Module):
    """uint8 crops (B, H, W, 3) -> pooled features (B, D), differentiable."""

    def __init__(self, encoder: ImageEncoder) -> None:
        super().__init__()
        self.source = encoder.name
        self.preprocess = encoder.preprocess
        self.dim = encoder.dim
        self.model = encoder.model
        mean = torch.tensor(self.preprocess.mean, dtype=torch.float32)
        std = torch.tensor(self.preprocess.std, dtype=torch.float32)
        self.register_buffer("scale", (1.0 / (255.0 * std)).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("shift", (mean / std).view(1, 3, 1, 1), persistent=False)

    def train(self, mode: bool = True) -> "TrainableImageTower":
        super().train(mode)
        self.model.eval()  # keep batch-norm statistics as pretrained
        return self

    def forward(self, pixels: np.ndarray) -> Tensor:
        batch = torch.from_numpy(pixels).to(self.scale.device).permute(0, 3, 1, 2).float()
        out = self.model(pixel_values=batch * self.scale - self.shift)
        pooled = out.pooler_output if getattr(out, "pooler_output", None) is not None else out.last_hidden_state.mean(1)
        return pooled.flatten(1).float()

    def save(self, folder: Path) -> None:
        """Weights and the image processor, so `ImageEncoder(folder)` loads the tuned tower."""
        save_tower(self.model, self.source, folder)


class FrozenTowerCopy:
    """A frozen tower loaded from a local folder, saved into every checkpoint as it is.

    A checkpoint that named the folder instead would break when copied to another machine
    or when the folder moves; hub ids need no copy, the hub (or its cache) has them.
    """

    def __init__(self, encoder: ImageEncoder) -> None:
        self.encoder = encoder

    def save(self, folder: Path) -> None:
        save_tower(self.encoder.model, self.encoder.name, folder)


def save_tower(model: nn.Module, source: str, folder: Path) -> None:
    """`save_pretrained` of the weights and of the processor they were loaded with."""
    from transformers import AutoImageProcessor

    model.save_pretrained(folder)
    AutoImageProcessor.from_pretrained(source).save_pretrained(folder)
