"""Small prompt models built from configs, for tests and offline demos (no hub needed).

A word-level tokenizer over a known vocabulary, wrapped in `PreTrainedTokenizerFast` and
saved beside a randomly initialised GPT-2 or T5, gives a folder that loads through exactly
the path users' models take (`from_pretrained` on a directory). The real defaults stay
`gpt2` and `google/flan-t5-base`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

PAD, UNK, EOS = "[PAD]", "[UNK]", "</s>"


def build_word_tokenizer(words: Iterable[str], *, tags: Iterable[str] = (), seq2seq: bool = False) -> Any:
    """Word-level fast tokenizer; `tags` are whole tokens; seq2seq appends EOS to every text."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {tok: i for i, tok in enumerate([PAD, UNK, EOS, *sorted(set(words) - {PAD, UNK, EOS})])}
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token=UNK))
    core.pre_tokenizer = pre_tokenizers.Whitespace()
    if seq2seq:
        core.post_processor = processors.TemplateProcessing(single=f"$A {EOS}", special_tokens=[(EOS, vocab[EOS])])
    core.add_tokens(list(tags))
    return PreTrainedTokenizerFast(tokenizer_object=core, pad_token=PAD, unk_token=UNK, eos_token=EOS)


def build_gpt2(out_dir: Path, *, words: Iterable[str], tags: Iterable[str], layers: int = 2, width: int = 64,
               heads: int = 2, positions: int = 128, seed: int = 0) -> Path:
    """Save a randomly initialised GPT-2 and its word tokenizer (tags as whole tokens)."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    tokenizer = build_word_tokenizer(words, tags=tags)
    torch.manual_seed(seed)
    config = GPT2Config(vocab_size=len(tokenizer), n_positions=positions, n_embd=width, n_layer=layers, n_head=heads,
                        bos_token_id=tokenizer.eos_token_id, eos_token_id=tokenizer.eos_token_id,
                        pad_token_id=tokenizer.pad_token_id)
    GPT2LMHeadModel(config).save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return Path(out_dir)


def build_t5(out_dir: Path, *, words: Iterable[str], layers: int = 2, width: int = 64, heads: int = 2,
             seed: int = 0) -> Path:
    """Save a randomly initialised T5 shaped like FLAN-T5 (gated-GELU, untied head), tokenizer too."""
    import torch
    from transformers import T5Config, T5ForConditionalGeneration

    tokenizer = build_word_tokenizer(words, seq2seq=True)
    torch.manual_seed(seed)
    config = T5Config(vocab_size=len(tokenizer), d_model=width, d_ff=width * 2, d_kv=width // heads,
                      num_layers=layers, num_decoder_layers=layers, num_heads=heads,
                      feed_forward_proj="gated-gelu", tie_word_embeddings=False, dropout_rate=0.0,
                      pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
                      decoder_start_token_id=tokenizer.pad_token_id)
    T5ForConditionalGeneration(config).save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return Path(out_dir)
