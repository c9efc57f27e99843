"""The image tower: one vector per image, from a vision backbone or a CLIP-family checkpoint.

ResNet-50 (`microsoft/resnet-50`, 2048-d pooled features) is the default; any backbone whose
output carries a `pooler_output` comes through the same door. A two-tower checkpoint (CLIP,
SigLIP) gives its projected image embedding (`get_image_features`), a vector in the space
its text tower shares. Either way the preprocessing is the checkpoint's own (its image
processor's resize, crop, mean and std). Inputs arrive as uint8 crops from the decode
workers; rescaling and normalisation are done here, on the model's device.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from curate.models.devices import autocast
from curate.models.joint import feature_vectors, is_two_tower, joint_space
from curate.models.loading import load_model, load_pretrained
from curate.models.preprocess import ImagePreprocess, preprocess_from_config
from curate.schemas.tables import EncoderInfo

OPTION = "--image-model"


def _load_preprocess(name: str, *, hint: str | None = None) -> ImagePreprocess:
    """Read the resize/crop/normalise settings the model was trained with."""
    from transformers import AutoImageProcessor

    processor = load_pretrained(AutoImageProcessor.from_pretrained, name, what="image processor", option=OPTION,
                                hint=hint)
    return preprocess_from_config(processor.to_dict())


def pooled_features(model: Any, pixels: torch.Tensor) -> torch.Tensor:
    """A backbone's pooled output (or the mean of its last hidden states)."""
    out = model(pixel_values=pixels)
    pooled = out.pooler_output if getattr(out, "pooler_output", None) is not None else out.last_hidden_state.mean(1)
    return pooled.flatten(1)


def projected_features(model: Any, pixels: torch.Tensor) -> torch.Tensor:
    """A two-tower checkpoint's image embedding in its joint space."""
    return feature_vectors(model.get_image_features(pixel_values=pixels))


class ImageEncoder:
    """Vectors for batches of decoded images.

    `model` lets a caller share one loaded two-tower checkpoint between both towers; `hint` is
    the advice on failure when the tower comes from a saved model rather than --image-model.
    """

    def __init__(self, name: str, *, device: torch.device, model: Any = None, hint: str | None = None) -> None:
        self.name = name
        self.device = device
        self.preprocess = _load_preprocess(name, hint=hint)
        model = model if model is not None else load_model(name, what="image model", option=OPTION, hint=hint)
        self.two_tower = is_two_tower(model)
        self.features = projected_features if self.two_tower else pooled_features
        self.model = model.eval().to(device)
        self.channels_last = device.type == "cuda" and not self.two_tower  # convolution backbones gain; ViTs do not
        if self.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        mean = torch.tensor(self.preprocess.mean, dtype=torch.float32, device=device)
        std = torch.tensor(self.preprocess.std, dtype=torch.float32, device=device)
        self._scale = (1.0 / (255.0 * std)).view(1, 3, 1, 1)
        self._shift = (mean / std).view(1, 3, 1, 1)
        self.dim = self._probe_dim()

    @property
    def info(self) -> EncoderInfo:
        settings: dict[str, Any] = {"preprocess": self.preprocess.describe()}
        if self.two_tower:
            settings.update(tower="image_embeds", joint_space=joint_space(self.model, self.dim))
        return EncoderInfo(model=self.name, dim=self.dim, kind="image", settings=settings)

    def _probe_dim(self) -> int:
        crop = self.preprocess.crop
        return int(self.encode(np.zeros((1, crop, crop, 3), dtype=np.uint8)).shape[1])

    def to_tensor(self, pixels: np.ndarray) -> torch.Tensor:
        """uint8 NHWC -> normalised float NCHW on the device (pinned, async copy on CUDA)."""
        batch = torch.from_numpy(pixels)
        if self.device.type == "cuda":
            batch = batch.pin_memory().to(self.device, non_blocking=True)
        batch = batch.permute(0, 3, 1, 2).float()
        batch = batch * self._scale - self._shift
        if self.device.type == "cuda":
            return batch.contiguous(memory_format=torch.channels_last if self.channels_last else torch.contiguous_format)
        return batch

    @torch.inference_mode()
    def encode(self, pixels: np.ndarray) -> np.ndarray:
        """(B, H, W, 3) uint8 -> (B, D) float32 vectors."""
        if len(pixels) == 0:
            return np.zeros((0, getattr(self, "dim", 0)), dtype=np.float32)
        with autocast(self.device):
            vectors = self.features(self.model, self.to_tensor(pixels))
        return vectors.float().cpu().numpy()
