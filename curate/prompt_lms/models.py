"""The prompt-writing language models: loading by recipe, layer freezing, training precision.

`concept` is a causal LM (GPT-2 by default) and `upsample` a sequence-to-sequence model
(FLAN-T5 by default); both load through `from_pretrained`, so a hub id and a local folder
both work. Freezing keeps only the top N transformer blocks (and the final layer norm that
sits on them) trainable; the token embeddings, and with them GPT-2's tied output head, stay
frozen, which is what keeps a small prompt corpus from wrecking the vocabulary.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import torch

from curate.errors import CurateError
from curate.models.loading import load_pretrained


@dataclass(frozen=True)
class Precision:
    """How a training step runs: autocast dtype (None: fp32) and whether a grad scaler is needed."""

    name: str
    dtype: torch.dtype | None

    @property
    def needs_scaler(self) -> bool:
        return self.dtype == torch.float16


def model_class(recipe: str) -> Any:
    """The transformers auto class a recipe's model loads with."""
    from transformers import AutoModelForCausalLM, AutoModelForSeq2SeqLM

    classes = {"concept": AutoModelForCausalLM, "upsample": AutoModelForSeq2SeqLM}
    if recipe not in classes:
        raise CurateError(f"Unknown prompt model recipe '{recipe}'; known: {', '.join(classes)}.")
    return classes[recipe]


def load_prompt_model(name: str, recipe: str, *, option: str = "--base", hint: str | None = None) -> tuple[Any, Any]:
    """(model, tokenizer) for a recipe; a causal LM gets a pad token and left padding.

    `hint` is the advice on failure when the model is a trained folder rather than --base.
    """
    from transformers import AutoTokenizer

    tokenizer = load_pretrained(AutoTokenizer.from_pretrained, name, what="tokenizer", option=option, hint=hint)
    model = load_pretrained(model_class(recipe).from_pretrained, name, what="prompt model", option=option, hint=hint)
    if recipe == "concept":
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
        tokenizer.padding_side = "left"  # generation continues the right end of every row
    if model.config.pad_token_id is None:
        model.config.pad_token_id = tokenizer.pad_token_id
    return model, tokenizer


def _gpt2_blocks(model: Any) -> tuple[list[torch.nn.Module], list[torch.nn.Module]]:
    return list(model.transformer.h), [model.transformer.ln_f]


def _t5_blocks(model: Any) -> tuple[list[torch.nn.Module], list[torch.nn.Module]]:
    """The decoder's blocks: the top of a seq2seq stack is where the output is written."""
    tops: list[torch.nn.Module] = [model.decoder.final_layer_norm]
    if not getattr(model.config, "tie_word_embeddings", True):
        tops.append(model.lm_head)  # FLAN-T5's head is its own matrix, not the embeddings
    return list(model.decoder.block), tops


BLOCKS: dict[str, Callable[[Any], tuple[list[torch.nn.Module], list[torch.nn.Module]]]] = {
    "gpt2": _gpt2_blocks,
    "t5": _t5_blocks,
}


def freeze_to_top(model: Any, trainable_layers: int | None) -> tuple[int, int]:
    """Leave only the top `trainable_layers` blocks trainable; returns (trainable, total) params.

    None or 0 (`--trainable-layers 0`), or a number at least the model's depth, trains
    everything (embeddings included).
    """
    total = sum(p.numel() for p in model.parameters())
    if not trainable_layers:
        return total, total
    kind = model.config.model_type
    if kind not in BLOCKS:
        raise CurateError(f"--trainable-layers is not supported for '{kind}' models (known: {', '.join(BLOCKS)}).")
    blocks, tops = BLOCKS[kind](model)
    if trainable_layers >= len(blocks):
        return total, total
    model.requires_grad_(False)
    for module in [*blocks[-trainable_layers:], *tops]:
        module.requires_grad_(True)
    return sum(p.numel() for p in model.parameters() if p.requires_grad), total


def training_precision(name: str, device: torch.device, *, allow_fp16: bool) -> Precision:
    """`auto`: bf16 autocast on CUDA that supports it, fp16 only where the recipe allows it
    (T5 overflows in fp16), else fp32; CPU always trains in fp32."""
    if device.type != "cuda":
        if name in ("bf16", "fp16"):
            raise CurateError(f"--precision {name} needs a CUDA GPU; use --precision fp32 or auto on CPU.")
        return Precision("fp32", None)
    if name == "fp16" and not allow_fp16:
        raise CurateError("This recipe trains in fp32 or bf16, never fp16 (T5 overflows); use --precision bf16 or auto.")
    bf16 = torch.cuda.is_bf16_supported()
    if name == "bf16" and not bf16:
        raise CurateError("--precision bf16 needs a GPU with bfloat16 support; use --precision auto.")
    if name in ("auto", "bf16") and bf16:
        return Precision("bf16", torch.bfloat16)
    if name == "fp16" or (name == "auto" and allow_fp16):
        return Precision("fp16", torch.float16)
    return Precision("fp32", None)
