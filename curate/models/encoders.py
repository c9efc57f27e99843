"""The image and text towers of a run, loaded together on one device.

When both towers come from one two-tower checkpoint (`--model`, or the same CLIP id given to
`--image-model` and `--text-model`), the checkpoint is loaded once and shared.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from curate.models.devices import resolve_device
from curate.models.image_encoder import ImageEncoder
from curate.models.text_encoder import TextEncoder
from curate.schemas.config.flow import EncoderConfig


@dataclass
class Encoders:
    """Both towers; built inside the process that uses them (builders, not live objects)."""

    image: ImageEncoder
    text: TextEncoder
    device: torch.device


def load_encoders(config: EncoderConfig) -> Encoders:
    """Resolve the device and load both towers, failing with one clear line if one is missing."""
    device = resolve_device(config.device)
    image = ImageEncoder(config.image_checkpoint, device=device)
    shared = image.model if image.two_tower and config.text_checkpoint == config.image_checkpoint else None
    text = TextEncoder(
        config.text_checkpoint, device=device, pooling=config.text_pooling, max_tokens=config.max_text_tokens,
        model=shared,
    )
    return Encoders(image=image, text=text, device=device)

