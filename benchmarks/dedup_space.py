"""Which image vectors should `curate dedup` compare: projected, or the encoder's own?

    python benchmarks/dedup_space.py

Injects 40 resized, JPEG re-encoded copies into 300 rendered scenes, and into the 299 real
photographs of ../shared/data/coco300 when present, then for each image feature (RGB
thumbnails, a randomly initialised ResNet) and each space (the encoder's vectors
standardised with the projection's own statistics, or projected by a contrastive
projection trained on these pairs with MiniLM captions) prints, per cosine threshold, the
share of copies grouped with their original and the share of rows grouped with a different
picture. Exact cosine (numpy), so the figures are about the space, not the index.
"""

from __future__ import annotations

import csv
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from curate.io.formats.base import Shard  # noqa: E402
from curate.io.formats.registry import READERS
from curate.io.spill import PairVectors  # noqa: E402
from curate.models.builders import RESNET50_PREPROCESSOR, packaged_minilm  # noqa: E402
from curate.models.projection import build_projection  # noqa: E402
from curate.pipelines.train import fit  # noqa: E402
from curate.schemas.config.flow import TrainConfig
from curate.synthetic.duplicates import (  # noqa: E402
    DuplicateTruth,
    inject_copies,
    write_scenes_with_duplicates,
)
from curate.synthetic.vectors import thumbnail_vectors  # noqa: E402

COCO = Path(__file__).resolve().parents[2] / "shared" / "data" / "coco300"
THRESHOLDS = (0.9, 0.95, 0.97, 0.99)


def read_back(truth: DuplicateTruth) -> tuple[list[str], list[bytes], list[str]]:
    shard = Shard(path=truth.shard, format="webdataset", shard_id=truth.shard.name.split(".")[0])
    samples = list(READERS["webdataset"](shard))
    return [s.key for s in samples], [s.image for s in samples], [s.text for s in samples]


def random_resnet_vectors(images: list[bytes], folder: Path) -> np.ndarray:
    from transformers import ConvNextImageProcessorPil, ResNetConfig, ResNetModel

    from curate.models.image_encoder import ImageEncoder
    from curate.models.preprocess import decode_image

    torch.manual_seed(0)
    ResNetModel(ResNetConfig(embedding_size=64, hidden_sizes=[64, 128, 256, 512], depths=[1, 1, 1, 1])).save_pretrained(folder)
    ConvNextImageProcessorPil(**dict(RESNET50_PREPROCESSOR, size={"shortest_edge": 64})).save_pretrained(folder)
    encoder = ImageEncoder(str(folder), device=torch.device("cpu"))
    pixels = np.stack([decode_image(b, encoder.preprocess) for b in images])
    return np.concatenate([encoder.encode(pixels[i:i + 64]) for i in range(0, len(pixels), 64)])


def spaces(image: np.ndarray, text: np.ndarray) -> dict[str, np.ndarray]:
    """Standardised encoder vectors and projected ones, from one trained projection."""
    config = TrainConfig(dim=64, epochs=60, batch_size=64, lr=3e-3)
    model = build_projection("contrastive", image_dim=image.shape[1], text_dim=text.shape[1], dim=64)
    model.image_norm.fit(image.mean(0), image.std(0))
    model.text_norm.fit(text.mean(0), text.std(0))
    fit(model, PairVectors(image, text), config, advance=lambda _: None)
    standardised = model.image_norm(torch.from_numpy(image)).detach().numpy()
    return {"standardised": standardised, "projected": model.project_image(image)}


def quality(vectors: np.ndarray, keys: list[str], truth: DuplicateTruth, threshold: float) -> tuple[float, float]:
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    sims = unit @ unit.T
    np.fill_diagonal(sims, -2)
    same = np.array([[truth.same(a, b) for b in keys] for a in keys])
    np.fill_diagonal(same, False)
    hit = sims >= threshold
    at = {k: i for i, k in enumerate(keys)}
    found = np.mean([hit[at[c]][same[at[c]]].any() for c in truth.copies])
    return float(found), float(np.mean((hit & ~same).any(axis=1)))


def run(name: str, truth: DuplicateTruth, work: Path) -> None:
    from curate.models.text_encoder import TextEncoder

    keys, images, captions = read_back(truth)
    text = TextEncoder(str(packaged_minilm()), device=torch.device("cpu")).encode(captions)
    features = {"thumbnail 16x16": thumbnail_vectors(images), "random ResNet": random_resnet_vectors(images, work / name)}
    for feature, image in features.items():
        for space, vectors in spaces(image.astype(np.float32), text).items():
            cells = [quality(vectors, keys, truth, t) for t in THRESHOLDS]
            row = "  ".join(f"{t}: {f:.0%} / {w:.1%}" for t, (f, w) in zip(THRESHOLDS, cells))
            print(f"{name:8s} {feature:16s} {space:13s} {row}")


def main() -> None:
    torch.set_num_threads(1)
    print("copies found / rows grouped with a different picture, per cosine threshold")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        run("scenes", write_scenes_with_duplicates(work / "scenes.tar", count=300, copies=40), work)
        if (COCO / "captions.csv").is_file():
            with open(COCO / "captions.csv", newline="") as handle:
                rows = list(csv.DictReader(handle))
            originals = {Path(r["file_name"]).stem: ((COCO / "images" / r["file_name"]).read_bytes(), r["caption"])
                         for r in rows}
            run("photos", inject_copies(work / "photos.tar", originals, copies=40), work)


if __name__ == "__main__":
    main()
