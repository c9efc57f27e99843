"""A 2-D map of a sample of image embeddings, coloured by their pair's similarity.

The sample is drawn by whole row groups chosen at random across the run's embeddings files
(from the footers alone), so only the sampled rows' vectors are read, however large the run.
Vectors go through the run's projection when it can be loaded, landing in the space where
the score is a cosine; otherwise the raw image vectors are used and the figure says so. PCA
(an SVD of the centred sample) makes the two axes.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from curate.errors import CurateError
from curate.io.run_database import RunDatabase
from curate.schemas.tables import Table

log = logging.getLogger("curate")


@dataclass
class EmbeddingMap:
    """Points on the first two principal axes; `space` says which vectors they are."""

    xy: np.ndarray
    similarity: np.ndarray
    space: str
    explained: tuple[float, float]


def embedding_map(db: RunDatabase, *, sample: int, projection_dir: str | None, seed: int) -> EmbeddingMap | None:
    """Sample, project (if possible), reduce; None when there is nothing to draw."""
    if sample < 3 or Table.SCORES not in db.views:
        return None
    rows = sample_vectors(db.layout.shard_files(Table.EMBEDDINGS), sample=sample, seed=seed)
    if rows is None or rows.num_rows < 3:
        return None
    joined = _with_similarity(db, rows)
    if joined.num_rows < 3:
        return None
    from curate.io.embeddings import vectors

    raw = vectors(joined.column("image_emb")).astype(np.float32)
    points, space = project_images(raw, projection_dir)
    xy, explained = pca_2d(points)
    return EmbeddingMap(xy=xy, similarity=joined.column("similarity").to_numpy(), space=space, explained=explained)


def sample_vectors(files: list[Path], *, sample: int, seed: int) -> pa.Table | None:
    """About `sample` rows of (key, image_emb), read as random whole row groups."""
    groups = [(path, i, n) for path in files for i, n in enumerate(_row_group_sizes(path)) if n]
    if not groups:
        return None
    rng = np.random.default_rng(seed)
    tables, taken = [], 0
    for index in rng.permutation(len(groups)):
        path, group, rows = groups[index]
        with pq.ParquetFile(path) as parquet:
            tables.append(parquet.read_row_group(group, columns=["key", "image_emb"]))
        taken += rows
        if taken >= sample:
            break
    table = pa.concat_tables(tables)
    if table.num_rows > sample:
        table = table.take(np.sort(rng.choice(table.num_rows, size=sample, replace=False)))
    return table


def project_images(raw: np.ndarray, projection_dir: str | None) -> tuple[np.ndarray, str]:
    """Image vectors in the scoring space, or the raw vectors when no projection loads."""
    problem = _unloadable(projection_dir)
    if problem is None:
        try:
            from curate.models.projection import load_projection

            model, card = load_projection(Path(projection_dir))  # type: ignore[arg-type]
            return np.asarray(model.project_image(raw), dtype=np.float32), f"projected ({card.loss}, {card.out_dim}-d)"
        except (ImportError, CurateError, OSError, RuntimeError, ValueError) as exc:
            problem = str(exc)
    log.warning("embedding map uses raw image vectors: %s", problem)
    norms = np.linalg.norm(raw, axis=1, keepdims=True)
    return raw / np.maximum(norms, 1e-12), f"raw image embeddings ({raw.shape[1]}-d, L2-normalised)"


def _unloadable(projection_dir: str | None) -> str | None:
    """Why the projection cannot be loaded, checked without importing torch; None if it may load."""
    from curate.schemas.projection import CARD_FILE, NATIVE, WEIGHTS_FILE, ProjectionCard

    if not projection_dir:
        return "the scores name no projection directory"
    folder = Path(projection_dir)
    try:
        card = ProjectionCard.from_text((folder / CARD_FILE).read_text())
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return f"{folder / CARD_FILE} is not a readable projection card ({type(exc).__name__})"
    if card.loss != NATIVE and not (folder / WEIGHTS_FILE).is_file():  # the native space has no weights
        return f"no {WEIGHTS_FILE} in {folder}"
    return None


def pca_2d(points: np.ndarray) -> tuple[np.ndarray, tuple[float, float]]:
    """The first two principal components and the share of variance each explains."""
    centred = points - points.mean(axis=0, keepdims=True)
    _, singular, vt = np.linalg.svd(centred, full_matrices=False)
    variance = singular**2
    total = float(variance.sum()) or 1.0
    axes = vt[:2] if len(vt) >= 2 else np.vstack([vt, np.zeros_like(vt)])
    shares = (float(variance[0] / total), float(variance[1] / total) if len(variance) > 1 else 0.0)
    return centred @ axes.T, shares


def _with_similarity(db: RunDatabase, rows: pa.Table) -> pa.Table:
    """Keep the sampled rows that were scored, each with its similarity (same order)."""
    keys = pa.table({"key": rows.column("key"), "row": pa.array(np.arange(rows.num_rows))})
    db.con.register("map_sample", keys)
    try:
        found = db.arrow("SELECT m.row, s.similarity FROM map_sample m JOIN scores s USING (key) ORDER BY m.row")
    finally:
        db.con.unregister("map_sample")
    picked = rows.take(found.column("row"))
    return picked.append_column("similarity", found.column("similarity"))


def _row_group_sizes(path: Path) -> list[int]:
    meta = pq.read_metadata(path)
    return [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]
