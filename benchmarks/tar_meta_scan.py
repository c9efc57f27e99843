"""What knowing a tar's meta columns up front costs, next to reading the tar once.

    python benchmarks/tar_meta_scan.py [samples]

A WebDataset tar's `.json` fields are all kept, so its reader announces them before
iterating: from img2dataset's status file beside the tar (a Parquet footer) when there is
one, else from a pass over the tar that reads only the JSON members. Writes one tar of
`samples` (default 5000) rendered scenes with LAION-style JSON, with and without a status
file, and prints seconds for `meta_schema()` each way and for one full read of the tar.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from curate.io.formats.base import Shard  # noqa: E402
from curate.io.formats.webdataset import WebDatasetReader, WebDatasetWriter  # noqa: E402
from curate.schemas.sample import Sample  # noqa: E402
from curate.synthetic.scenes import render_scene  # noqa: E402


def write_tar(folder: Path, count: int) -> tuple[Path, list[dict]]:
    images = [render_scene(i, size=64, image_format="JPEG").image for i in range(50)]
    rows = []
    with WebDatasetWriter(folder / "00000.tar") as writer:
        for i in range(count):
            meta = {"url": f"http://x/{i}.jpg", "width": 64, "height": 64, "NSFW": "UNLIKELY",
                    "LICENSE": "cc-by", "aesthetic": 5.0 + i % 3, "status": "success"}
            writer.write(Sample(f"s/{i:09d}", images[i % 50], f"caption {i}", meta))
            rows.append({"key": f"{i:09d}", "caption": f"caption {i}", **meta, "error_message": None})
    return folder / "00000.tar", rows


def seconds(action) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
    with tempfile.TemporaryDirectory() as tmp:
        tar, rows = write_tar(Path(tmp), count)
        shard = Shard(tar, "webdataset", "00000")
        scan = seconds(lambda: WebDatasetReader(shard).meta_schema())
        full = seconds(lambda: sum(1 for _ in WebDatasetReader(shard)))
        pq.write_table(pa.Table.from_pylist(rows), tar.with_name("00000.parquet"))
        footer = seconds(lambda: WebDatasetReader(shard).meta_schema())
        size = tar.stat().st_size
    print(f"tar of {count} samples ({size / 1e6:.1f} MB)")
    print(f"meta_schema() from a pass over the JSON members: {scan:.3f} s")
    print(f"meta_schema() from img2dataset's status file:    {footer:.3f} s")
    print(f"one full read of the tar (every record):         {full:.3f} s")


if __name__ == "__main__":
    main()
