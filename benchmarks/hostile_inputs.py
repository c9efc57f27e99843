"""What hostile inputs cost `curate embed`: huge members and a huge caption, in time and memory.

    python benchmarks/hostile_inputs.py [--members 6] [--member-mib 100] [--caption-mib 10] [--workers 0]

Each case runs `curate embed` in a fresh process (tiny random ResNet; the packaged MiniLM
tokenizer and encoder when installed, else a tiny BERT) and prints its wall time and the
peak RSS it added over the same process embedding an ordinary shard:
  * a DiffusionDB-style zip of `--members` images, each padded with zeros to `--member-mib`
    MiB (a 0.6 MB zip, 600 MiB of bytes), at --batch-size 6: with
    --max-batch-bytes 256MiB (the default), 64MiB, and 16GiB (no byte budget: what a batch of
    64 members at the size cap came to before);
  * a webdataset shard of 5 pairs, one caption of `--caption-mib` MiB, with captions cut
    before tokenising (the default) and with the cut switched off (tokenised whole).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from curate.models.builders import build_bert, build_resnet, packaged_minilm
from curate.synthetic.scenes import render_scene

CHILD = """
import json, resource, sys, time
from pathlib import Path
import curate.models.text_encoder as text_encoder
from curate.pipelines.embed import run_embed
from curate.schemas.config.flow import EmbedConfig, EncoderConfig

args = json.loads(sys.argv[1])
if args.pop("uncut"):
    text_encoder.CHARS_PER_TOKEN = 10**12
encoders = EncoderConfig(image_model=args.pop("image"), text_model=args.pop("text"), device="cpu")
warm = EmbedConfig(inputs=(args.pop("warm"),), out=Path(args["out"]) / "warm", encoders=encoders,
                   workers=args.get("workers", 0))
run_embed(warm, quiet=True)  # models loaded, one ordinary shard embedded: the baseline
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.perf_counter()
outcome = run_embed(EmbedConfig(inputs=(args.pop("input"),), out=Path(args.pop("out")) / "run", encoders=encoders,
                                **{"workers": 0, **args}), quiet=True)
seconds = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"seconds": seconds, "added_mb": (peak - base) / 1024, "pairs": outcome.pairs,
                  "errors": sum(outcome.errors.values())}))
"""


def padded_zip(path: Path, *, members: int, mib: int) -> Path:
    """PNG scenes padded with zeros after their end (readers and decoders stop at IEND)."""
    prompts = {}
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for i in range(members):
            image = render_scene(i, size=64, image_format="PNG").image
            zf.writestr(f"{i:05d}.png", image + b"\0" * (mib * 1024 * 1024 - len(image)))
            prompts[f"{i:05d}.png"] = {"p": f"scene {i}"}
        zf.writestr(f"{path.stem}.json", json.dumps(prompts))
    return path


def caption_tar(path: Path, *, caption_mib: int) -> Path:
    import io
    import tarfile

    huge = ("a red circle on a blue background " * (caption_mib * 32_000))[: caption_mib * 1024 * 1024]
    with tarfile.open(path, "w") as tar:
        for i in range(5):
            scene = render_scene(i, size=64, image_format="PNG")
            for name, data in ((f"{i:05d}.png", scene.image), (f"{i:05d}.txt", (huge if i == 2 else scene.caption).encode())):
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return path


def run_case(label: str, root: Path, models: dict, **options) -> None:
    out = Path(tempfile.mkdtemp(dir=root))
    args = json.dumps({**models, "out": str(out), "uncut": options.pop("uncut", False), **options})
    done = subprocess.run([sys.executable, "-c", CHILD, args], capture_output=True, text=True, check=True)
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    print(f"{label:<70} {figures['seconds']:7.1f} s  +{figures['added_mb']:7.0f} MB peak RSS  "
          f"({figures['pairs']} pairs, {figures['errors']} errors)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--members", type=int, default=6)
    parser.add_argument("--member-mib", type=int, default=100)
    parser.add_argument("--caption-mib", type=int, default=10)
    parser.add_argument("--workers", type=int, default=0, help="decode processes for the members' cases")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="hostile-bench-"))
    text = packaged_minilm() or build_bert(root / "bert", words=["a", "red", "circle", "on", "blue", "background"])
    models = {"image": str(build_resnet(root / "resnet", tiny=True, crop=64)), "text": str(text),
              "warm": str(caption_tar(root / "warm.tar", caption_mib=0))}
    print(f"text model: {Path(text).name}")
    bombs = padded_zip(root / "part-000001.zip", members=args.members, mib=args.member_mib)
    print(f"zip of {args.members} x {args.member_mib} MiB members: {bombs.stat().st_size / 1e6:.2f} MB on disk")
    for budget in ("256MiB", "64MiB", "16GiB"):
        run_case(f"members, --batch-size 6 --workers {args.workers} --max-batch-bytes {budget}", root,
                 {**models, "input": str(bombs)}, batch_size=6, max_batch_bytes=budget, workers=args.workers)
    long = caption_tar(root / "long.tar", caption_mib=args.caption_mib)
    run_case(f"5 pairs, one {args.caption_mib} MiB caption, cut before tokenising", root, {**models, "input": str(long)})
    run_case(f"5 pairs, one {args.caption_mib} MiB caption, tokenised whole", root, {**models, "input": str(long)},
             uncut=True)


if __name__ == "__main__":
    main()
