"""The image tower: a `transformers` vision backbone giving one pooled vector per image.

ResNet-50 (`microsoft/resnet-50`, 2048-d) is the default; any model whose output carries a
`pooler_output` comes through the same door. Inputs arrive as uint8 crops from the decode
workers; rescaling and normalisation are done here, on the model's device.
"""

from __future__ import annotations

import numpy as np
import torch

from curate.models.devices import autocast
from curate.models.loading import load_pretrained
from curate.models.preprocess import ImagePreprocess, preprocess_from_config
from curate.schemas.tables import EncoderInfo


def _load_preprocess(name: str, *, hint: str | None = None) -> ImagePreprocess:
    """Read the resize/crop/normalise settings the model was trained with."""
    from transformers import AutoImageProcessor

    processor = load_pretrained(AutoImageProcessor.from_pretrained, name, what="image processor", option="--image-model",
                                hint=hint)
    return preprocess_from_config(processor.to_dict())


class ImageEncoder:
    """Pooled features for batches of decoded images."""

    def __init__(self, name: str, *, device: torch.device, hint: str | None = None) -> None:
        """`hint`: the advice on failure when the tower comes from a saved model rather than --image-model."""
        from transformers import AutoModel

        self.name = name
        self.device = device
        self.preprocess = _load_preprocess(name, hint=hint)
        model = load_pretrained(AutoModel.from_pretrained, name, what="image model", option="--image-model", hint=hint)
        self.model = model.eval().to(device)
        if device.type == "cuda":
            self.model = self.model.to(memory_format=torch.channels_last)
        mean = torch.tensor(self.preprocess.mean, dtype=torch.float32, device=device)
        std = torch.tensor(self.preprocess.std, dtype=torch.float32, device=device)
        self._scale = (1.0 / (255.0 * std)).view(1, 3, 1, 1)
        self._shift = (mean / std).view(1, 3, 1, 1)
        self.dim = self._probe_dim()

    @property
    def info(self) -> EncoderInfo:
        return EncoderInfo(model=self.name, dim=self.dim, kind="image", settings={"preprocess": self.preprocess.describe()})

    def _probe_dim(self) -> int:
        crop = self.preprocess.crop
        return int(self.encode(np.zeros((1, crop, crop, 3), dtype=np.uint8)).shape[1])

    def _to_tensor(self, pixels: np.ndarray) -> torch.Tensor:
        """uint8 NHWC -> normalised float NCHW on the device (pinned, async copy on CUDA)."""
        batch = torch.from_numpy(pixels)
        if self.device.type == "cuda":
            batch = batch.pin_memory().to(self.device, non_blocking=True)
        batch = batch.permute(0, 3, 1, 2).float()
        batch = batch * self._scale - self._shift
        if self.device.type == "cuda":
            batch = batch.contiguous(memory_format=torch.channels_last)
        return batch

    @torch.inference_mode()
    def encode(self, pixels: np.ndarray) -> np.ndarray:
        """(B, H, W, 3) uint8 -> (B, D) float32 pooled features."""
        if len(pixels) == 0:
            return np.zeros((0, getattr(self, "dim", 0)), dtype=np.float32)
        with autocast(self.device):
            out = self.model(pixel_values=self._to_tensor(pixels))
        pooled = out.pooler_output if getattr(out, "pooler_output", None) is not None else out.last_hidden_state.mean(1)
        return pooled.flatten(1).float().cpu().numpy()
