"""`curate search`: the pairs of a run nearest in meaning to a text or an image query.

The query goes through the encoders named in the projection card and through the
projection the index was built with, then one FAISS search. A text query searches the
image index by default (cross-modal: which pictures show this?), as does an image query;
`--target text` searches the captions instead.
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from curate.index.store import BuiltIndex
from curate.io.embeddings import embeddings_files
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
    if config.text is not None:
        return projection.project_text(embed_text_query(config.text, card, device=config.device))
    return projection.project_image(embed_image_query(config.image, card, device=config.device))  # type: ignore[arg-type]


def captions(run_dir: Path, keys: list[str], shards: list[str]) -> dict[str, str | None]:
    """key -> caption, reading only the hit keys of each hit shard's embeddings file."""
    by_shard: dict[str, list[str]] = defaultdict(list)
    for key, shard in zip(keys, shards):
        by_shard[shard].append(key)
    found: dict[str, str | None] = {}
    layout = RunLayout(run_dir)
    for shard, wanted in by_shard.items():
        table = pq.read_table(layout.embeddings(shard), columns=["key", "text"], filters=[("key", "in", wanted)])
        found.update(zip(table.column("key").to_pylist(), table.column("text").to_pylist()))
    return found


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
    texts = captions(config.run_dir, keys, shards)
    hits = [
        SearchHit(rank=i + 1, key=key, text=texts.get(key), similarity=float(sim), shard=shard)
        for i, (key, shard, sim) in enumerate(zip(keys, shards, sims[0][valid]))
    ]
    asked = {"text": config.text} if config.text is not None else {"image": str(config.image)}
    return SearchResult(query={**asked, "target": config.target}, hits=hits, seconds=time.perf_counter() - start)
