"""Shards written by the tools users run: img2dataset (from a loopback HTTP server) and `datasets`.

img2dataset runs in a subprocess (its multiprocessing distributor re-imports the main module
under `spawn`), with one process and two threads, downloading rendered scenes that a
`http.server` on 127.0.0.1 serves, plus URLs that answer 404: nothing leaves the machine.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import os
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pyarrow as pa
import pyarrow.parquet as pq

from curate.synthetic.scenes import render_scene

IMAGES, MISSING = 5, 2  # served scenes, and URLs that answer 404
ADDITIONAL = ["NSFW", "similarity", "LICENSE"]  # LAION-style columns img2dataset is told to keep

# One interpreter for every output format: importing img2dataset costs seconds of CPU.
DOWNLOAD = """
import sys
from img2dataset import download
urls, root, additional = sys.argv[1:4]
for fmt in sys.argv[4:]:
    download(url_list=urls, input_format="parquet", url_col="url", caption_col="caption", output_format=fmt,
             output_folder=f"{root}/{fmt}", processes_count=1, thread_count=2, image_size=64, resize_mode="no",
             save_additional_columns=additional.split(","), enable_wandb=False, timeout=5, retries=0,
             distributor="multiprocessing", number_sample_per_shard=100)
"""


@dataclass(frozen=True)
class Download:
    """img2dataset's output folders for one URL list, by output format, and what was asked."""

    folders: dict[str, Path]
    urls: list[dict]

    @property
    def successes(self) -> int:
        return IMAGES

    @property
    def failures(self) -> int:
        return MISSING


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *_: object) -> None:
        pass


@contextlib.contextmanager
def serve(folder: Path) -> Iterator[str]:
    """`folder` over HTTP on 127.0.0.1 (a free port) for the block's duration; yields the base URL."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def url_rows(base: str) -> list[dict]:
    """The URL list: served scenes with their captions and LAION-style columns, then 404s."""
    rows = [{"url": f"{base}/{i}.png", "caption": render_scene(i).caption, "NSFW": "UNLIKELY",
             "similarity": 0.25 + i / 100, "LICENSE": "cc-by"} for i in range(IMAGES)]
    rows += [{"url": f"{base}/gone-{i}.png", "caption": f"gone {i}", "NSFW": "NSFW", "similarity": 0.1,
              "LICENSE": "?"} for i in range(MISSING)]
    return rows


def img2dataset_download(root: Path, formats: tuple[str, ...] = ("webdataset", "parquet")) -> Download:
    """Run img2dataset on the same URL list once per output format (`root/<format>/`)."""
    www = root / "www"
    www.mkdir(parents=True)
    for i in range(IMAGES):
        (www / f"{i}.png").write_bytes(render_scene(i, size=48 + i, image_format="PNG").image)
    env = dict(os.environ, NO_ALBUMENTATIONS_UPDATE="1", WANDB_MODE="disabled", WANDB_SILENT="true")
    with serve(www) as base:
        rows = url_rows(base)
        pq.write_table(pa.Table.from_pylist(rows), root / "urls.parquet")
        subprocess.run([sys.executable, "-c", DOWNLOAD, str(root / "urls.parquet"), str(root), ",".join(ADDITIONAL),
                        *formats], check=True, env=env, cwd=root, capture_output=True, timeout=600)
    return Download(folders={fmt: root / fmt for fmt in formats}, urls=rows)
