"""Two-tower checkpoints (CLIP, SigLIP, and any model with `get_image_features` and
`get_text_features`): recognising one, its joint space, and its towers' projected vectors.

Such a checkpoint is one model whose forward needs both an image and a text; each of our
towers calls its own half (`get_image_features` / `get_text_features`), so an image can be
embedded without a caption and the other way round. The vectors kept are the projected
embeddings (CLIP's `image_embeds` / `text_embeds` before normalisation), the ones the
model's own similarity is the cosine of.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import torch

from curate.errors import CurateError
from curate.schemas.tables import JointSpace

# how each family's text tower was trained to see its captions; others pad to the longest caption
TEXT_PADDING = {"siglip": "max_length", "siglip2": "max_length"}  # SigLIP pools the last position: pad as trained
FEATURE_FIELDS = ("image_embeds", "text_embeds", "pooler_output")  # where a features call's output keeps the vectors


def is_two_tower(model: Any) -> bool:
    """Whether a loaded model projects images and texts into one space of its own."""
    return callable(getattr(model, "get_image_features", None)) and callable(getattr(model, "get_text_features", None))


def joint_space(model: Any, dim: int) -> dict[str, Any]:
    """What the embeddings' metadata records of a checkpoint's joint space (`JointSpace` as JSON)."""
    scale = getattr(model, "logit_scale", None)
    bias = getattr(model, "logit_bias", None)
    if scale is None:
        raise CurateError(f"{type(model).__name__} has no logit_scale; it is not a CLIP-family checkpoint curate knows.")
    space = JointSpace(
        model_type=str(model.config.model_type), dim=int(dim), logit_scale=float(torch.as_tensor(scale).detach().exp()),
        logit_bias=float(torch.as_tensor(bias).detach()) if bias is not None else None,
    )
    return asdict(space)


def feature_vectors(out: Any) -> torch.Tensor:
    """The (B, D) projected vectors of a `get_*_features` call, a tensor or a model output
    (recent `transformers` return the output, its `pooler_output` projected)."""
    if isinstance(out, torch.Tensor):
        return out
    for name in FEATURE_FIELDS:
        value = getattr(out, name, None)
        if isinstance(value, torch.Tensor):
            return value
    raise CurateError(f"{type(out).__name__} carries none of {', '.join(FEATURE_FIELDS)}; this checkpoint's towers "
                      "are not supported.")


def text_context(model: Any, tokenizer: Any) -> int:
    """The longest caption, in tokens, the text tower was trained on (CLIP 77, SigLIP 64)."""
    text_config = getattr(model.config, "text_config", None)
    positions = getattr(text_config, "max_position_embeddings", None)
    if positions:
        return int(positions)
    return int(min(getattr(tokenizer, "model_max_length", 77), 512))


def text_padding(model: Any) -> str:
    """`max_length` for families trained on padded captions (SigLIP), else `longest`."""
    return TEXT_PADDING.get(str(model.config.model_type), "longest")
