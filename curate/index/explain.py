"""Why a pair scored as it did: the run's captions whose vectors lie nearest to the pair's image.

A low score says the caption and the image disagree, not which one is wrong. Showing the
captions of the same run that the image lies nearest to ("this image looks more like: ...")
tells a reviewer: if those captions describe the picture, the pair's own caption is wrong;
if they are as odd as the picture, the image is (a placeholder, a broken render, ...).

The pair's image vector is read from the run's embeddings. With a current index
(`curate index`), its text index is searched in the index's space; without one, every caption
of the run is compared exactly, in the space of the projection that scored the pair (for a
projection trained with `--folds`, the fold projection that scored this pair: the one that
never saw it). The pair itself is left out, and captions repeated word for word are shown
once.
"""

from __future__ import annotations

import heapq
import logging
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from curate.errors import CurateError
from curate.index.store import BuiltIndex, embeddings_fingerprint
from curate.io.embeddings import captions_of, embeddings_files, iter_batches, vectors
from curate.models.folds import PairScorer, load_scorer
from curate.models.projection import read_card
from curate.schemas.index import INDEX_CARD_FILE
from curate.schemas.layout import RunLayout
from curate.schemas.tables import FALSE_MATCH_RATE, Table, read_scores_info

log = logging.getLogger("curate")
SEARCH_MARGIN = 4  # hits asked for per caption shown: room for the pair itself and repeated captions


@dataclass(frozen=True)
class Neighbour:
    """A caption of the run near the pair's image: its pair's key, the caption, their cosine."""

    key: str
    text: str | None
    similarity: float


@dataclass
class Explanation:
    """A pair, its own scores, and the captions its image lies nearest to (best first)."""

    key: str
    text: str | None
    similarity: float | None
    false_match_rate: float | None
    nearest: list[Neighbour] = field(default_factory=list)
    space: str = ""  # what was searched: the index, or an exact search with which projection


@dataclass
class Query:
    """One pair to explain: its image vector and the projection whose space it is searched in."""

    key: str
    image: np.ndarray  # (image_dim,) float16 as stored
    model: int  # index into the models searched with


def explain_pairs(run_dir: Path, keys: list[str], *, k: int = 3, device: str = "cpu") -> dict[str, Explanation]:
    """The `k` captions nearest to each pair's image; refuses keys the run does not hold."""
    layout = RunLayout(Path(run_dir))
    found = own_rows(layout, keys)
    built = current_index(Path(run_dir))
    if built is not None:
        near, space = indexed_neighbours(built, found, k=k, device=device), "the run's index (text side)"
    else:
        scorer, projection_dir = scoring_projection(layout, device=device)
        near = exact_neighbours(layout, found, scorer, k=k)
        which = " (each pair's out-of-fold projection)" if scorer.folds > 1 else ""
        space = f"exact search over the run's captions with {projection_dir}{which}"
    for key, explanation in found.items():
        explanation.nearest, explanation.space = near.get(key, []), space
    return found


def own_rows(layout: RunLayout, keys: list[str]) -> dict[str, Explanation]:
    """Each key's caption and scores, from its shard's scores file (or its embeddings when unscored)."""
    by_shard: dict[str, list[str]] = defaultdict(list)
    for key in keys:
        by_shard[key.split("/", 1)[0]].append(key)
    found: dict[str, Explanation] = {}
    for shard, wanted in by_shard.items():
        path = layout.scores(shard) if layout.scores(shard).is_file() else layout.embeddings(shard)
        rows = _rows(path, wanted)
        for row in rows:
            found[row["key"]] = Explanation(row["key"], row.get("text"), row.get("similarity"),
                                            row.get(FALSE_MATCH_RATE))
    missing = [key for key in keys if key not in found]
    if missing:
        raise CurateError(f"{layout.root} holds no pair with the key {missing[0]!r}; give a key as `curate sql "
                          f"{layout.root} \"SELECT key FROM scores LIMIT 5\"` prints them.")
    return found


def _rows(path: Path, keys: list[str]) -> list[dict]:
    if not Path(path).is_file():
        return []
    names = set(pq.read_schema(path).names)
    columns = [c for c in ("key", "text", "similarity", FALSE_MATCH_RATE) if c in names]
    return pq.read_table(path, columns=columns, filters=[("key", "in", keys)]).to_pylist()


def image_vectors(layout: RunLayout, keys: list[str]) -> dict[str, np.ndarray]:
    """The stored image vector of each key (float16), read from its shard's embeddings."""
    by_shard: dict[str, list[str]] = defaultdict(list)
    for key in keys:
        by_shard[key.split("/", 1)[0]].append(key)
    found: dict[str, np.ndarray] = {}
    for shard, wanted in by_shard.items():
        path = layout.embeddings(shard)
        if not path.is_file():
            raise CurateError(f"{layout.root} has no embeddings of shard {shard!r}: the image vectors an explanation "
                              "starts from; explain pairs of a run that holds its embeddings/.")
        table = pq.read_table(path, columns=["key", "image_emb"], filters=[("key", "in", wanted)])
        found.update(zip(table.column("key").to_pylist(), vectors(table.column("image_emb"))))
    missing = [key for key in keys if key not in found]
    if missing:
        raise CurateError(f"{layout.root} holds no pair with the key {missing[0]!r} in its embeddings.")
    return found


def current_index(run_dir: Path) -> BuiltIndex | None:
    """The run's index when it exists and was built from the embeddings the run holds now."""
    folder = RunLayout(run_dir).index_dir
    if not (folder / INDEX_CARD_FILE).is_file():
        return None
    built = BuiltIndex.open(run_dir)
    if embeddings_fingerprint(embeddings_files(run_dir)) != built.card.embeddings_fingerprint:
        log.warning("the index of %s is stale (embeddings changed); searching the captions exactly instead", run_dir)
        return None
    return built


def scoring_projection(layout: RunLayout, *, device: str) -> tuple[PairScorer, str]:
    """What scored the run (named in its scores files), loaded with its folds."""
    infos = {read_scores_info(pq.read_schema(p)).projection_dir for p in layout.shard_files(Table.SCORES)}
    if len(infos) != 1:
        raise CurateError(f"{layout.root} has {'no scores' if not infos else 'scores of several projections'}: "
                          "an explanation searches in the space of the projection that scored the run; "
                          f"run `curate score {layout.root} --projection PROJ_DIR --out {layout.root}` first.")
    folder = Path(infos.pop())
    return load_scorer(folder, read_card(folder), device=device), str(folder)


def indexed_neighbours(built: BuiltIndex, found: dict[str, Explanation], *, k: int,
                       device: str) -> dict[str, list[Neighbour]]:
    """Search the text index with each pair's image vector, projected as the index was built."""
    images = image_vectors(RunLayout(built.run_dir), list(found))
    query = built.projection().project_image(np.stack([images[key] for key in found]).astype(np.float32))
    index, _ = built.load("text", device=device)
    sims, ids = index.search(query, min(k * SEARCH_MARGIN + 1, built.card.rows))
    out: dict[str, list[Neighbour]] = {}
    for key, row_sims, row_ids in zip(found, sims, ids):
        valid = row_ids >= 0
        keys, shards = built.keys_of(row_ids[valid])
        texts = captions_of(built.run_dir, keys, shards)
        ranked = [(float(sim), hit, texts.get(hit)) for sim, hit in zip(row_sims[valid], keys)]
        out[key] = distinct(ranked, own=key, k=k)
    return out


def exact_neighbours(layout: RunLayout, found: dict[str, Explanation], scorer: PairScorer, *,
                     k: int) -> dict[str, list[Neighbour]]:
    """Compare each pair's image with every caption of the run, in its own scoring space."""
    images = image_vectors(layout, list(found))
    folds = scorer.fold_of(list(found))
    queries = [Query(key, images[key], int(fold)) for key, fold in zip(found, folds)]
    projected = {q.key: scorer.models[q.model].project_image(q.image[None].astype(np.float32))[0] for q in queries}
    best: dict[str, list[tuple[float, str, str | None]]] = {q.key: [] for q in queries}
    wanted = k * SEARCH_MARGIN + 1
    for path in layout.shard_files(Table.EMBEDDINGS):
        for batch in iter_batches(path, columns=("key", "text", "text_emb")):
            keys, texts = batch.column(0).to_pylist(), batch.column(1).to_pylist()
            text = vectors(batch.column(2))
            for model in sorted({q.model for q in queries}):
                space = scorer.models[model].project_text(text)
                for q in (q for q in queries if q.model == model):
                    _keep_best(best[q.key], space @ projected[q.key], keys, texts, wanted)
    return {key: distinct(sorted(heap, reverse=True), own=key, k=k) for key, heap in best.items()}


def _keep_best(heap: list[tuple[float, str, str | None]], sims: np.ndarray, keys: list[str],
               texts: list[str | None], wanted: int) -> None:
    """Push a batch's candidates into a bounded min-heap of the best `wanted` (ties by key)."""
    for i in np.argsort(-sims)[:wanted]:
        item = (float(sims[i]), keys[i], texts[i])
        if len(heap) < wanted:
            heapq.heappush(heap, item)
        elif item > heap[0]:
            heapq.heapreplace(heap, item)


def distinct(ranked: list[tuple[float, str, str | None]], *, own: str, k: int) -> list[Neighbour]:
    """The first `k` captions, best first, leaving out the pair itself and captions already shown."""
    shown: list[Neighbour] = []
    seen: set[str | None] = set()
    for sim, key, text in ranked:
        if key == own or text in seen:
            continue
        seen.add(text)
        shown.append(Neighbour(key, text, sim))
        if len(shown) == k:
            break
    return shown
