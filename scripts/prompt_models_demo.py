"""Set up the offline prompt-model demo of docs/prompt-models.md: a corpus and two small bases.

These machines reach no model hub, so the demo's bases are small GPT-2 and T5 models built
from configs (randomly initialised, word-level tokenizers over the corpus vocabulary) and
the corpus is the synthetic prompt generator's. With hub access, pass `--base gpt2` and
`--base google/flan-t5-base` to the same commands instead.

    python scripts/prompt_models_demo.py runs/prompt-demo [--prompts 3000]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from curate.prompt_lms.builders import build_gpt2, build_t5
from curate.prompt_lms.config import PromptTags, UpsampleTrainConfig
from curate.synthetic.prompt_corpus import corpus_words, synthetic_prompts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--prompts", type=int, default=3000)
    args = parser.parse_args()
    args.folder.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table({"prompt": synthetic_prompts(args.prompts, seed=7)}), args.folder / "prompts.parquet")
    tags = PromptTags()
    build_gpt2(args.folder / "base" / "gpt2-small", words=corpus_words(), tags=[tags.start, tags.end],
               layers=4, width=128, heads=4)
    prefix_words = UpsampleTrainConfig().prefix.replace(":", " : ").split()
    build_t5(args.folder / "base" / "t5-small", words=corpus_words() + prefix_words, layers=3, width=128, heads=4)


if __name__ == "__main__":
    main()
