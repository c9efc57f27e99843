"""What `curate score` scores: the embeddings files its inputs name, made if missing, checked.

An INPUT is either a run directory (its `embeddings/` is used as is) or shard files and
folders. Shards whose embeddings are not yet in the output run are embedded first, with the
encoders the projection card names; shards that already have embeddings are never
re-encoded, so re-scoring with another projection costs a read of the vectors, no model.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

from curate.errors import CurateError
from curate.io.embeddings import (
    check_encoders,
    embeddings_files,
    embeddings_info,
    vector_dims,
)
from curate.io.location import Location, io_map, is_url, location
from curate.io.tables import table_schema
from curate.models.projection import load_projection
from curate.pipelines.native import first_embeddings, write_native_projection
from curate.schemas.config.flow import EncoderConfig, ScoreConfig
from curate.schemas.layout import RunLayout
from curate.schemas.projection import ProjectionCard, is_native
from curate.schemas.tables import Table

log = logging.getLogger("curate")


def is_run_dir(path: Location) -> bool:
    """A run directory is recognised by its `embeddings/` folder."""
    return path.is_dir() and (path / Table.EMBEDDINGS.value).is_dir()


def scoring_projection(config: ScoreConfig) -> tuple[ScoreConfig, ProjectionCard]:
    """The projection folder and card `config` scores with; `--projection native` becomes the
    card of the inputs' own towers, written into the output run."""
    if not is_native(config.projection):
        return config, load_projection(config.projection)[1]  # refuses a bad folder before any work
    runs = [p for p in config.inputs if is_run_dir(p)] + [location(config.out)]
    folder, card = write_native_projection(config.out, first_embeddings(runs, command="curate score"))
    return replace(config, projection=folder), card


def encoder_config(card: ProjectionCard, *, device: str) -> EncoderConfig:
    """The encoders (and text settings) the projection was trained on, to embed new shards alike."""
    if card.text_encoder.joint_space is not None:  # a CLIP-family tower tokenizes as it was trained
        return EncoderConfig(image_model=card.image_encoder.model, text_model=card.text_encoder.model, device=device)
    text = card.text_encoder.settings
    if "pooling" not in text or "max_tokens" not in text:
        raise CurateError(f"The projection card names text settings {text} without pooling/max_tokens; re-embed and retrain.")
    return EncoderConfig(
        image_model=card.image_encoder.model, text_model=card.text_encoder.model,
        text_pooling=text["pooling"], max_text_tokens=int(text["max_tokens"]), device=device,
    )


def check_against_card(path: Location, card: ProjectionCard, projection: Path) -> None:
    """Refuse vectors of other dimensions or other encoders than the card names."""
    schema = table_schema(path)  # one footer read (a round trip, for a file at a URL)
    dims, expected = vector_dims(schema), (card.image_encoder.dim, card.text_encoder.dim)
    if dims != expected:
        raise CurateError(
            f"{path} holds {dims[0]}-d image and {dims[1]}-d text vectors, but the projection {projection} "
            f"expects {expected[0]}-d and {expected[1]}-d."
        )
    check_encoders(path, embeddings_info(path, schema), (card.image_encoder, card.text_encoder),
                   remedy=f"{projection} was trained on other vectors: score embeddings of the card's encoders "
                          "or train a projection on these.")


def shard_embeddings(paths: list[Location], config: ScoreConfig, card: ProjectionCard, *, quiet: bool) -> list[Location]:
    """The embeddings files of shard inputs, embedding (into `config.out`) only those that lack one."""
    from curate.io.formats.detect import find_shards
    from curate.pipelines.embed import run_embed

    layout = RunLayout(config.out)
    shards = find_shards(paths, format=config.format, columns=config.columns)
    listed = {p.name for p in layout.shard_files(Table.EMBEDDINGS)}  # one listing, not a check per shard
    existing = [layout.embeddings(s.shard_id) for s in shards if layout.embeddings(s.shard_id).name in listed]
    io_map(lambda path: check_against_card(path, card, config.projection), existing, remote=is_url(config.out))
    missing = [s for s in shards if layout.embeddings(s.shard_id).name not in listed]
    if missing:
        log.info("%d of %d shards have no embeddings yet; embedding them with the card's encoders", len(missing), len(shards))
        encoders = encoder_config(card, device=config.device)
        run_embed(config.embedding(tuple(s.path for s in missing), encoders), quiet=quiet, shards=missing)
    return [layout.embeddings(s.shard_id) for s in shards]


def collect_embeddings(config: ScoreConfig, card: ProjectionCard, *, quiet: bool) -> list[Location]:
    """Every embeddings file the inputs name, checked against the card; one file per shard id.

    Run directories' files are checked here, before any embedding; shard inputs' existing files
    are checked by `shard_embeddings`, and the ones it makes use the card's encoders."""
    runs = [p for p in config.inputs if is_run_dir(p)]
    shards = [p for p in config.inputs if not is_run_dir(p)]
    files = [f for run in runs for f in embeddings_files(run)]
    io_map(lambda path: check_against_card(path, card, config.projection), files, remote=any(map(is_url, files)))
    if shards:
        files += shard_embeddings(shards, config, card, quiet=quiet)
    by_shard: dict[str, Location] = {}
    for path in files:
        seen = by_shard.setdefault(path.stem, path)
        if seen.resolve() != path.resolve():
            raise CurateError(f"Two inputs hold embeddings of shard '{path.stem}': {seen} and {path}; score them into separate runs.")
    return list(by_shard.values())
