"""Small captioner parts built from configs, for tests and the offline demo (no hub needed).

A word-level GPT-2 and a shallow random ResNet saved as model folders load back through
exactly the doors users' models take (`from_pretrained` on a directory).
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

from curate.models.builders import RESNET50_PREPROCESSOR

GPT2_SPECIAL_TOKENS = {"bos_token": "<|startoftext|>", "eos_token": "<|endoftext|>", "pad_token": "<|pad|>", "unk_token": "<|unk|>"}


def build_gpt2(
    out_dir: Path, *, words: Iterable[str], n_layer: int = 2, n_embd: int = 64, n_head: int = 2,
    dropout: float = 0.1, seed: int = 0,
) -> Path:
    """Save a small randomly initialised GPT-2 with a word-level tokenizer over `words`.

    GPT-2's BPE files cannot be downloaded here; a word-level vocabulary (punctuation split
    off) is enough for captions drawn from a known word list, and loads through the same
    `AutoTokenizer` / `AutoModelForCausalLM` doors as the hub's `gpt2`.
    """
    import torch
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    specials = list(GPT2_SPECIAL_TOKENS.values())
    vocab_words = specials + sorted({w.lower() for w in words} | set(",.") - set(specials))
    core = Tokenizer(models.WordLevel({w: i for i, w in enumerate(vocab_words)}, unk_token=GPT2_SPECIAL_TOKENS["unk_token"]))
    core.normalizer = normalizers.Lowercase()
    core.pre_tokenizer = pre_tokenizers.Whitespace()  # words, and punctuation split off
    core.decoder = decoders.WordPiece(prefix="##")  # joins words with spaces, no space before punctuation
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=core, **GPT2_SPECIAL_TOKENS)
    tokenizer.save_pretrained(out_dir)
    torch.manual_seed(seed)
    config = GPT2Config(
        vocab_size=len(vocab_words), n_layer=n_layer, n_embd=n_embd, n_head=n_head, n_positions=128,
        resid_pdrop=dropout, embd_pdrop=dropout, attn_pdrop=dropout,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
    )
    GPT2LMHeadModel(config).save_pretrained(out_dir)
    return out_dir


def build_shallow_resnet(out_dir: Path, *, crop: int = 64, seed: int = 0) -> Path:
    """Save a two-stage random ResNet (128-d pooled) and its processor.

    Shallow and wide keeps colour and coarse shape readable from random weights (a deeper
    tiny ResNet washes them out), so a captioner trained on it has something to learn from.
    """
    import torch
    from transformers import ConvNextImageProcessorPil, ResNetConfig, ResNetModel

    torch.manual_seed(seed)
    ResNetModel(ResNetConfig(embedding_size=32, hidden_sizes=[64, 128], depths=[1, 1])).save_pretrained(out_dir)
    settings = dict(RESNET50_PREPROCESSOR, size={"shortest_edge": crop}, crop_pct=1.0)  # resize to the crop: nothing cut off
    ConvNextImageProcessorPil(**settings).save_pretrained(out_dir)
    return Path(out_dir)
