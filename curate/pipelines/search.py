"""`curate search`: the pairs of a run nearest in meaning to a text or an image query.

The query goes through the encoders named in the projection card and through the
projection the index was built with, then one FAISS search. A text query searches the
image index by default (cross-modal: which pictures show this?), as does an image query;
`--target text` searches the captions instead. `--key KEY` queries with the stored image
vector of a pair of the run (no encoder is loaded); `--key KEY --explain` lists the run's
captions nearest to that image instead (`curate.index.explain`), with or without an index.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from curate.index.explain import Explanation, explain_pairs, image_vectors
from curate.index.store import BuiltIndex
from curate.io.embeddings import captions_of, embeddings_files
from curate.models.projection import read_card
from curate.models.search_query import embed_image_query, embed_text_query
from curate.schemas.config.vectors import SearchConfig
from curate.schemas.index import SearchHit
from curate.schemas.layout import RunLayout


@dataclass
class SearchResult:
    """The ranked hits and what was asked."""

    query: dict[str, str]
    hits: list[SearchHit]
    seconds: float


def query_vector(config: SearchConfig, built: BuiltIndex) -> np.ndarray:
    """The (1, dim) projected, normalised query."""
    card = read_card(Path(built.card.projection_dir))
    projection = built.projection()
    if config.key is not None:
        stored = image_vectors(RunLayout(config.run_dir), [config.key])[config.key]
        return projection.project_image(stored[None].astype(np.float32))
    if config.text is not None:
        return projection.project_text(embed_text_query(config.text, card, device=config.device))
    return projection.project_image(embed_image_query(config.image, card, device=config.device))  # type: ignore[arg-type]


def run_search(config: SearchConfig) -> SearchResult:
    """Embed the query, search the chosen index, and name the hits."""
    config.validate()
    start = time.perf_counter()
    built = BuiltIndex.open(config.run_dir)
    built.check_current(embeddings_files(config.run_dir))
    query = query_vector(config, built)
    index, _ = built.load(config.target, device=config.device)
    sims, ids = index.search(query, min(config.k, built.card.rows))
    valid = ids[0] >= 0
    keys, shards = built.keys_of(ids[0][valid])
    texts = captions_of(config.run_dir, keys, shards)
    hits = [
        SearchHit(rank=i + 1, key=key, text=texts.get(key), similarity=float(sim), shard=shard)
        for i, (key, shard, sim) in enumerate(zip(keys, shards, sims[0][valid]))
    ]
    asked = {"text": config.text} if config.text is not None else {"key": config.key} if config.key is not None \
        else {"image": str(config.image)}
    return SearchResult(query={**asked, "target": config.target}, hits=hits, seconds=time.perf_counter() - start)


@dataclass
class ExplainResult:
    """A pair of the run and the captions its image lies nearest to."""

    explanation: Explanation
    seconds: float


def run_explain(config: SearchConfig) -> ExplainResult:
    """`--key KEY --explain`: why the pair scored as it did."""
    config.validate()
    start = time.perf_counter()
    found = explain_pairs(config.run_dir, [config.key], k=config.k, device=config.device)  # type: ignore[list-item]
    return ExplainResult(found[config.key], time.perf_counter() - start)  # type: ignore[index]
