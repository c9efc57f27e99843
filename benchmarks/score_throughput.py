"""How close `curate score` comes to just reading its input: rows/s, and the ratio.

    python benchmarks/score_throughput.py [--rows 200000] [--shards 4] [--image-dim 2048] [--text-dim 768]
                                          [--loss contrastive] [--dim 512] [--device cpu] [--rounds 3]

Writes synthetic embeddings files (random float16 vectors, a key, a caption and three meta
columns per row) through the real `ParquetTableWriter`, builds an untrained projection of
the asked shape (scoring cost does not depend on the weights' values), then times, on the
same files in the same run:
  * reading them with pyarrow alone (every column, batch by batch, nothing computed),
  * `run_score` from stored embeddings (read, project both sides, cosine, write scores/),
in interleaved rounds (one warm-up round not counted), and prints rows/s for both per round,
the medians and their ratio. No encoder is involved.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from curate.io.tables import ParquetTableWriter
from curate.models.projection import build_projection, save_card, save_weights
from curate.pipelines.score import run_score
from curate.schemas.arrow_schemas import embeddings_schema
from curate.schemas.config.flow import ScoreConfig
from curate.schemas.layout import RunLayout
from curate.schemas.projection import ProjectionCard, TrainingData, ValidationMetrics
from curate.schemas.tables import EmbeddingsInfo, EncoderInfo

META = pa.schema([("url", pa.string()), ("width", pa.int64()), ("height", pa.int64())])
ROW_GROUP = 8192


def encoders(image_dim: int, text_dim: int) -> tuple[EncoderInfo, EncoderInfo]:
    return (EncoderInfo("synthetic/image", image_dim, "image"),
            EncoderInfo("synthetic/text", text_dim, "text", {"pooling": "mean", "max_tokens": 77}))


def fsl(values: np.ndarray) -> pa.Array:
    return pa.FixedSizeListArray.from_arrays(pa.array(values.reshape(-1)), values.shape[1])


def write_embeddings(run: Path, *, rows: int, shards: int, image_dim: int, text_dim: int) -> None:
    """`shards` embeddings files of random vectors, written row group by row group."""
    rng = np.random.default_rng(0)
    image_enc, text_enc = encoders(image_dim, text_dim)
    for shard in range(shards):
        shard_id = f"{shard:05d}"
        info = EmbeddingsInfo(shard_id, "/synthetic", "webdataset", image_enc, text_enc, versions={})
        writer = ParquetTableWriter(RunLayout(run).embeddings(shard_id), embeddings_schema(info, META))
        count = rows // shards + (1 if shard < rows % shards else 0)
        for start in range(0, count, ROW_GROUP):
            n = min(ROW_GROUP, count - start)
            writer.write_rows({
                "key": [f"{shard_id}/{i:09d}" for i in range(start, start + n)],
                "text": [f"a synthetic caption number {i}" for i in range(start, start + n)],
                "image_emb": fsl(rng.standard_normal((n, image_dim), dtype=np.float32).astype(np.float16)),
                "text_emb": fsl(rng.standard_normal((n, text_dim), dtype=np.float32).astype(np.float16)),
                "url": [f"https://example.invalid/{i}.jpg" for i in range(start, start + n)],
                "width": [512] * n, "height": [512] * n,
            })
        writer.close()


def write_projection(folder: Path, *, loss: str, image_dim: int, text_dim: int, dim: int) -> Path:
    """An untrained projection with a valid card naming the synthetic encoders."""
    model = build_projection(loss, image_dim=image_dim, text_dim=text_dim, dim=dim)
    fingerprint = save_weights(model, folder)
    metrics = ValidationMetrics(0, *([float("nan")] * 11))
    image_enc, text_enc = encoders(image_dim, text_dim)
    save_card(ProjectionCard(
        loss=loss, image_encoder=image_enc, text_encoder=text_enc, out_dim=model.out_dim, temperature=model.temperature,
        hyper={}, seed=0, data=TrainingData("synthetic", 0, 0, 0), metrics=metrics, fingerprint=fingerprint,
    ), folder)
    return folder


def pyarrow_read_rows_per_second(run: Path) -> tuple[int, float]:
    """Every column of every file, batch by batch: the floor any scorer pays."""
    start, rows = time.perf_counter(), 0
    for path in RunLayout(run).shard_files("embeddings"):
        with pq.ParquetFile(path) as parquet:
            for batch in parquet.iter_batches(batch_size=16384):
                rows += batch.num_rows
    return rows, rows / (time.perf_counter() - start)


def score_rows_per_second(run: Path, projection: Path, out: Path, device: str) -> tuple[int, float]:
    """`run_score` end to end (projection load, read, project, write) from stored embeddings."""
    start = time.perf_counter()
    summary = run_score(ScoreConfig(inputs=(run,), projection=projection, out=out, device=device), quiet=True)
    return summary.rows, summary.rows / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--shards", type=int, default=4)
    parser.add_argument("--image-dim", type=int, default=2048)
    parser.add_argument("--text-dim", type=int, default=768)
    parser.add_argument("--loss", default="contrastive")
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds, after one warm-up round")
    args = parser.parse_args()
    reads, scores = [], []
    with tempfile.TemporaryDirectory(prefix="curate-score-bench-") as tmp:
        run = Path(tmp) / "run"
        write_embeddings(run, rows=args.rows, shards=args.shards, image_dim=args.image_dim, text_dim=args.text_dim)
        projection = write_projection(Path(tmp) / "proj", loss=args.loss, image_dim=args.image_dim,
                                      text_dim=args.text_dim, dim=args.dim)
        for number in range(args.rounds + 1):  # round 0 warms the page cache and the imports
            rows, read_rate = pyarrow_read_rows_per_second(run)
            scored, score_rate = score_rows_per_second(run, projection, Path(tmp) / f"scored-{number}", args.device)
            assert rows == scored == args.rows
            if number:
                reads.append(read_rate)
                scores.append(score_rate)
                print(f"round {number}: pyarrow read {read_rate:,.0f} rows/s, curate score {score_rate:,.0f} rows/s",
                      flush=True)
    read, score = statistics.median(reads), statistics.median(scores)
    print(f"rows: {args.rows:,} in {args.shards} shards, vectors {args.image_dim}-d + {args.text_dim}-d float16, "
          f"{args.loss} projection -> {args.dim}-d, device {args.device}; medians of {args.rounds} rounds")
    print(f"pyarrow read alone:            {read:12,.0f} rows/s")
    print(f"curate score (stored vectors): {score:12,.0f} rows/s")
    print(f"ratio score / read:            {score / read:12.3f}")


if __name__ == "__main__":
    main()
