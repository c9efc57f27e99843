"""What reading and writing through URLs costs `curate embed`, apart from the network.

    python benchmarks/url_io.py [--pairs 512] [--per-shard 128] [--rounds 3]

Embeds the same WebDataset shards twice per round, interleaved: from and to local paths, and
from and to `file://` URLs of the same disk, so every shard goes through the URL path (listing
through fsspec, the tar read in place through fsspec, local write, upload of each output
file). Tiny encoders keep the model's share small, which makes the I/O overhead as visible as
it can be. Also prints the raw copy and upload rates of one shard-sized file (zip and folder
shards are still copied whole). The network of a real object store is not measured here: add
shard size / link bandwidth per shard for that.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from curate.io.location import RemotePath, location, upload
from curate.io.mirror import ShardMirror
from curate.pipelines.embed import run_embed
from curate.schemas.config.flow import EmbedConfig, EncoderConfig

sys.path.insert(0, str(Path(__file__).parent))
from embed_throughput import make_shards  # noqa: E402  (the same rendered JPEG shards)


def tiny_encoders(folder: Path) -> EncoderConfig:
    from curate.models.builders import build_bert, build_resnet

    image = build_resnet(folder / "image", tiny=True)
    text = build_bert(folder / "text", words="a red blue green circle square on grey".split())
    return EncoderConfig(image_model=str(image), text_model=str(text), device="cpu")


def embed_rate(inputs: str, out: str, encoders: EncoderConfig) -> float:
    summary = run_embed(EmbedConfig(inputs=(inputs,), out=out, encoders=encoders, batch_size=32, workers=1),
                        quiet=True)
    return summary.pairs / (summary.seconds - summary.stages.get("load models", 0.0))  # the run's clock less the load


def copy_rates(shard: Path, scratch: Path) -> tuple[float, float]:
    """MB/s of a shard's copy to scratch (what a worker does first) and of an output's upload."""
    from curate.io.formats.base import Shard

    megabytes = shard.stat().st_size / 1e6
    with ShardMirror() as mirror:
        start = time.perf_counter()
        with mirror.local(Shard(location(f"file://{shard}"), "webdataset", shard.stem)):
            fetched = time.perf_counter() - start
    start = time.perf_counter()
    upload(shard, RemotePath(f"file://{scratch}/uploaded.tar"))
    uploaded = time.perf_counter() - start
    return megabytes / fetched, megabytes / uploaded


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=512)
    parser.add_argument("--per-shard", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        shards = make_shards(root / "shards", pairs=args.pairs, per_shard=args.per_shard)
        encoders = tiny_encoders(root / "models")
        size = sum(p.stat().st_size for p in shards.iterdir()) / 1e6
        print(f"{args.pairs} pairs in {len(list(shards.iterdir()))} shards, {size:.1f} MB; tiny encoders, batch 32")
        rates: dict[str, list[float]] = {"local paths": [], "file:// URLs": []}
        for round_ in range(args.rounds):
            rates["local paths"].append(embed_rate(str(shards), str(root / f"local-{round_}"), encoders))
            rates["file:// URLs"].append(embed_rate(f"file://{shards}", f"file://{root}/url-{round_}", encoders))
        for name, values in rates.items():
            print(f"embed, {name:13s}: median {statistics.median(values):7.1f} pairs/s  "
                  f"(rounds: {', '.join(f'{v:.1f}' for v in values)})")
        ratio = statistics.median(rates["file:// URLs"]) / statistics.median(rates["local paths"])
        print(f"URL / local: {ratio:.3f}")
        fetch, put = copy_rates(next(shards.iterdir()), root)
        print(f"one shard: copy to scratch {fetch:,.0f} MB/s, upload {put:,.0f} MB/s (same disk, no network)")


if __name__ == "__main__":
    main()
