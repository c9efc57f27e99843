"""`--projection native`: the encoders' own joint space, written down as a projection folder.

Vectors from one CLIP-family checkpoint's two towers need no trained projection: the
checkpoint's own cosine scores them. Its card (encoders, joint space, logit scale and bias;
no weights) is derived from the embeddings' metadata and written to `RUN_DIR/native/`, so
every step after `score` (filter, stats, index, search, dedup, report) finds a projection
folder as it does for a trained one. The card is the same for the same encoders, so
rewriting it never changes a fingerprint.
"""

from __future__ import annotations

from pathlib import Path

from curate.errors import CurateError
from curate.io.atomic import write_json_atomic
from curate.io.embeddings import embeddings_info
from curate.io.location import Location
from curate.schemas.layout import RunLayout
from curate.schemas.projection import CARD_FILE, ProjectionCard, is_native, native_card
from curate.schemas.tables import Table


def write_native_projection(run: Location, embeddings: Location) -> tuple[Location, ProjectionCard]:
    """The native card for the towers that made `embeddings`, saved in `run`; refused (one line)
    when they share no joint space."""
    info = embeddings_info(embeddings)
    card = native_card(info.image_encoder, info.text_encoder)
    folder = RunLayout(run).native_dir
    write_json_atomic(folder / CARD_FILE, card.to_json())  # a URL's folder too, unlike a trained projection's
    return folder, card


def projection_folder(value: Path, *, run: Location, embeddings: Location) -> Location:
    """A `--projection` value as a folder: itself, or for `native` the run's native folder
    (written from the towers of `embeddings`)."""
    return write_native_projection(run, embeddings)[0] if is_native(value) else value


def first_embeddings(runs: list[Location], *, command: str) -> Location:
    """An embeddings file of the first run that has one: whose encoders the native card names."""
    for run in runs:
        files = RunLayout(run).shard_files(Table.EMBEDDINGS) if run.is_dir() else []
        if files:
            return files[0]
    raise CurateError(
        f"{command} --projection native scores vectors already embedded, and none are here yet; embed first "
        "with `curate embed SHARDS --out RUN_DIR --model CHECKPOINT`."
    )
