"""Set up the offline captioner demo of docs/captioner.md: rendered-scene subsets and two small models.

These machines reach no model hub, so the demo's towers are built from configs: a shallow
random ResNet (128-d pooled features on 64-px crops) and a 2-layer GPT-2 with a word-level
tokenizer over the scene vocabulary. The subsets are rendered single-object scenes, written
as `curate filter` writes subsets (Parquet for training, WebDataset for the held-out set).
With hub access, drop `--decoder` and `--image-model` to get `gpt2` and `microsoft/resnet-50`.

    python scripts/captioner_demo.py runs/captioner-demo [--train 1200] [--heldout 200]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from curate.captioner.builders import build_gpt2, build_shallow_resnet
from curate.synthetic.caption_scenes import (
    caption_words,
    single_object_scenes,
    write_subset,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--train", type=int, default=1200, help="Training scenes.")
    parser.add_argument("--heldout", type=int, default=200, help="Held-out scenes (other scene indices).")
    args = parser.parse_args()
    found = single_object_scenes(args.train + args.heldout)
    write_subset(args.folder / "subsets" / "train", found[:args.train], shards=4)
    write_subset(args.folder / "subsets" / "heldout", found[args.train:], fmt="webdataset", shards=1)
    build_shallow_resnet(args.folder / "models" / "resnet")
    build_gpt2(args.folder / "models" / "gpt2", words=caption_words(), n_layer=2, n_embd=64, n_head=2)


if __name__ == "__main__":
    main()
