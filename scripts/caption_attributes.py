"""Held-out attribute accuracy of captions of rendered single-object scenes, from `caption eval --out`.

A scene's caption reads `a <size> <colour> <shape> on a <background> background`. For every
pair of the per-pair table that `curate caption eval --out pairs.csv` wrote, each attribute
of the generated prompt is compared with the reference's; a prompt that does not follow the
template gets every attribute wrong. Beside each accuracy: the majority baseline (always
naming the reference's commonest value), which is what a captioner blind to the picture
reaches.

    python scripts/caption_attributes.py runs/captioner-demo/eval-pairs.csv [more.csv ...]
"""

from __future__ import annotations

import argparse
import csv
import re
from collections import Counter
from pathlib import Path

from curate.synthetic import scenes

ATTRIBUTES = {"size": scenes.SIZES, "colour": scenes.COLOURS, "shape": scenes.SHAPES, "background": scenes.BACKGROUNDS}


def _alternatives(names: object) -> str:
    return "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True))  # type: ignore[arg-type]


TEMPLATE = re.compile(
    rf"^an? (?P<size>{_alternatives(scenes.SIZES)}) (?P<colour>{_alternatives(scenes.COLOURS)}) "
    rf"(?P<shape>{_alternatives(scenes.SHAPES)}) on an? (?P<background>{_alternatives(scenes.BACKGROUNDS)}) background$"
)


def attributes(caption: str) -> dict[str, str | None]:
    """The caption's value of each attribute (None for all when it does not follow the template)."""
    match = TEMPLATE.match(caption.strip().lower())
    return {name: match.group(name) if match else None for name in ATTRIBUTES}


def accuracy(path: Path) -> dict[str, tuple[float, float]]:
    """Attribute -> (accuracy of the generated prompts, majority baseline), over the pairs of one table."""
    with open(path, newline="", encoding="utf-8") as handle:
        rows = [(attributes(r["prompt"]), attributes(r["reference"])) for r in csv.DictReader(handle)]
    figures = {}
    for name in ATTRIBUTES:
        truth = [ref[name] for _, ref in rows]
        majority = Counter(truth).most_common(1)[0][0]
        hits = sum(gen[name] == ref[name] for gen, ref in rows) / len(rows)
        figures[name] = (hits, sum(t == majority for t in truth) / len(rows))
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tables", type=Path, nargs="+")
    args = parser.parse_args()
    print("table," + ",".join(f"{n},{n} baseline" for n in ATTRIBUTES))
    for table in args.tables:
        figures = accuracy(table)
        print(f"{table}," + ",".join(f"{a:.3f},{b:.3f}" for a, b in figures.values()))


if __name__ == "__main__":
    main()
