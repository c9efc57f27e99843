"""Stored vectors without encoders: synthetic runs for index benchmarks and tests.

A million rows cannot be embedded on a laptop CPU in a benchmark's time, but the index only
ever sees vectors. These helpers write real `embeddings/<shard>.parquet` files (the real
writer, schema and metadata) from generated vectors, and a projection with a card, so
`curate index`, `search` and `dedup` run on them exactly as on an embedded run.

* `clustered_vectors`: a Gaussian mixture, the shape real embeddings have (topics, styles),
  and the case where approximate indexes must earn their recall.
* `thumbnail_vectors`: area-averaged RGB thumbnails, a classic near-duplicate feature that
  resizing and JPEG re-encoding barely move. It stands in for a pretrained image encoder
  where only randomly initialised ones can be had: random CNN features are not stable under
  re-encoding (see docs/index.md).
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import pyarrow as pa
from PIL import Image

from curate.io.embeddings import vectors_to_arrow
from curate.io.tables import ParquetTableWriter
from curate.schemas.arrow_schemas import embeddings_schema
from curate.schemas.layout import RunLayout
from curate.schemas.projection import ProjectionCard, TrainingData, ValidationMetrics
from curate.schemas.tables import EmbeddingsInfo, EncoderInfo

BLOCK_ROWS = 65536
ROW_GROUP_ROWS = 4096  # embed writes a row group per model batch; stay close to that


def clustered_vectors(rows: int, dim: int, *, clusters: int, spread: float, seed: int,
                      block: int = BLOCK_ROWS) -> Iterator[np.ndarray]:
    """Blocks of a `clusters`-component Gaussian mixture; the same seed gives the same rows."""
    centres = np.random.default_rng([seed, 0]).standard_normal((clusters, dim)).astype(np.float32)
    for number, start in enumerate(range(0, rows, block)):
        rng = np.random.default_rng([seed, number + 1])
        size = min(block, rows - start)
        noise = rng.standard_normal((size, dim), dtype=np.float32)
        yield centres[rng.integers(0, clusters, size)] + spread * noise


def synthetic_encoders(image_dim: int, text_dim: int) -> tuple[EncoderInfo, EncoderInfo]:
    """Encoder infos naming the vectors as synthetic, so no one mistakes them for model output."""
    return (EncoderInfo(model="synthetic-image", dim=image_dim, kind="image"),
            EncoderInfo(model="synthetic-text", dim=text_dim, kind="text"))


def write_embeddings(path: Path, *, keys: Sequence[str], texts: Sequence[str | None], image: np.ndarray,
                     text: np.ndarray, encoders: tuple[EncoderInfo, EncoderInfo]) -> Path:
    """One embeddings file from in-memory arrays, through the run's writer and schema."""

    info = EmbeddingsInfo(shard_id=Path(path).stem, source=str(path), format="synthetic",
                          image_encoder=encoders[0], text_encoder=encoders[1], versions={})
    writer = ParquetTableWriter(path, embeddings_schema(info, pa.schema([])))
    for start in range(0, len(keys), ROW_GROUP_ROWS):
        stop = start + ROW_GROUP_ROWS
        writer.write_rows({"key": list(keys[start:stop]), "text": list(texts[start:stop]),
                           "image_emb": vectors_to_arrow(image[start:stop]), "text_emb": vectors_to_arrow(text[start:stop])})
    writer.close()
    return Path(path)


def write_synthetic_run(run_dir: Path, *, rows: int, dim: int, shards: int = 4, clusters: int = 1000,
                        spread: float = 0.6, seed: int = 0) -> list[Path]:
    """`rows` clustered pairs in `shards` embeddings files under `run_dir/embeddings/`.

    Text vectors share the image vectors' clusters but not their noise, so image and text
    indexes are different data of the same shape.
    """
    encoders, paths = synthetic_encoders(dim, dim), []
    per_shard = -(-rows // shards)
    images = clustered_vectors(rows, dim, clusters=clusters, spread=spread, seed=seed, block=per_shard)
    texts = clustered_vectors(rows, dim, clusters=clusters, spread=spread, seed=seed + 1, block=per_shard)
    for number, (image, text) in enumerate(zip(images, texts)):
        keys = [f"{number:05d}/{i:09d}" for i in range(len(image))]
        path = RunLayout(Path(run_dir)).embeddings(f"{number:05d}")
        paths.append(write_embeddings(path, keys=keys, texts=[None] * len(keys), image=image, text=text, encoders=encoders))
    return paths


def synthetic_projection(folder: Path, *, image: EncoderInfo, text: EncoderInfo, dim: int, seed: int = 0) -> ProjectionCard:
    """A randomly initialised contrastive projection saved with its card (no training, zero metrics).

    A random linear map keeps a mixture's cluster structure, which is all an index
    benchmark needs; scoring with it would mean nothing, and the card says so (no pairs).
    """
    from curate.models.projection import build_projection, save_card, save_weights

    model = build_projection("contrastive", image_dim=image.dim, text_dim=text.dim, dim=dim, seed=seed)
    fingerprint = save_weights(model, Path(folder))
    metrics = ValidationMetrics(0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
    card = ProjectionCard(
        loss="contrastive", image_encoder=image, text_encoder=text, out_dim=dim, temperature=model.temperature,
        hyper={"dim": dim, "synthetic": 1}, seed=seed, data=TrainingData("synthetic", 0, 0, 0), metrics=metrics,
        fingerprint=fingerprint,
    )
    save_card(card, Path(folder))
    return card


def thumbnail_vectors(images: Sequence[bytes], *, side: int = 16) -> np.ndarray:
    """(N, side*side*3) float32: each image shrunk to side x side by area averaging, in [0, 1]."""
    out = np.empty((len(images), side * side * 3), dtype=np.float32)
    for row, data in enumerate(images):
        with Image.open(io.BytesIO(data)) as img:
            small = img.convert("RGB").resize((side, side), Image.BOX)
        out[row] = np.asarray(small, dtype=np.float32).reshape(-1) / 255.0
    return out
