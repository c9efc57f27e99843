"""Named filters the field runs (`filter --recipe`), each one predicate over a run's columns.

A recipe is a `--where` someone already wrote and published: its text here is the predicate,
and it reaches DuckDB exactly as a user's `--where` does (parsed as one expression and bound
to the scores view by `curate.io.predicate`, never pasted into a query), so a recipe keeps
exactly the pairs `--where "<its text>"` keeps. The columns it reads are written by `embed`
(`decoded_width`, `decoded_height`, `language`; see `schemas.tables.PAIR_FACTS`) and `score`;
a run made before they existed is refused in one line that says what to redo.

* `datacomp-basic`: DataComp's "basic" baseline (Gadre et al., 2023): an English caption
  (the identifier's most likely language) of more than 2 words and more than 5 characters,
  an image whose smaller side is at least 200 px and whose aspect ratio is at most 3.
* `laion`: LAION-5B's English cut: CLIP ViT-B/32 cosine of at least 0.28 and an English
  caption. The 0.28 is on that checkpoint's own scale: use it on runs scored with
  `--projection native` over openai/clip-vit-base-patch32 vectors.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from curate.errors import CurateError
from curate.schemas.config.flow import RECIPE_NAMES, FilterConfig
from curate.schemas.tables import FALSE_MATCH_RATE

if TYPE_CHECKING:
    import pyarrow as pa

RECIPE_COLUMN = "__recipe"


@dataclass(frozen=True)
class Recipe:
    """A published filter as one predicate, and the columns it needs."""

    name: str
    about: str
    where: str
    needs: tuple[str, ...]


ENGLISH = "language = 'en'"
WORDS = r"len(regexp_extract_all(text, '\S+'))"  # words: runs of non-space characters, as str.split() counts
SIDES = "least(decoded_width, decoded_height)", "greatest(decoded_width, decoded_height)"

RECIPES: dict[str, Recipe] = {r.name: r for r in (
    Recipe(
        name="datacomp-basic",
        about="DataComp's basic filter: English caption of more than 2 words and 5 characters, smaller side "
              ">= 200 px, aspect ratio <= 3",
        where=f"{WORDS} > 2 AND length(text) > 5 AND {ENGLISH} AND {SIDES[0]} >= 200 AND {SIDES[1]} <= 3 * {SIDES[0]}",
        needs=("text", "language", "decoded_width", "decoded_height"),
    ),
    Recipe(
        name="laion",
        about="LAION-5B's English cut: CLIP (ViT-B/32) score >= 0.28 and an English caption",
        where=f"similarity >= 0.28 AND {ENGLISH}",
        needs=("similarity", "language"),
    ),
)}
assert tuple(RECIPES) == RECIPE_NAMES, "schemas.config.flow.RECIPE_NAMES must name exactly the registered recipes"


def recipe_named(name: str) -> Recipe:
    """The registered recipe, or one line naming the known ones."""
    if name not in RECIPES:
        raise CurateError(f"Unknown --recipe '{name}'; known: {', '.join(RECIPES)}.")
    return RECIPES[name]


def check_columns(config: FilterConfig, schema: "pa.Schema", *, run: Path) -> None:
    """Refuse criteria that read columns the run's scores lack, saying which command writes them."""
    have = set(schema.names)
    if config.max_false_match is not None and FALSE_MATCH_RATE not in have:
        raise CurateError(
            f"--max-false-match reads {FALSE_MATCH_RATE}, which the scores of {run} lack (scored before it existed); "
            f"rescore: `curate score {run} --projection PROJ_DIR --out {run} --overwrite`."
        )
    if config.recipe is not None:
        missing = [c for c in recipe_named(config.recipe).needs if c not in have]
        if missing:
            raise CurateError(
                f"--recipe {config.recipe} reads {', '.join(missing)}, which the scores of {run} lack (embedded "
                f"before `curate embed` recorded them); re-embed with --overwrite, then rescore."
            )
