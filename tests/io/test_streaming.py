"""Shards at URLs are read where they lie: the first sample comes out before the whole file is fetched.

The store is fsspec's memory filesystem served through ranged requests (`RangedMemoryFS`),
the way s3fs and gcsfs serve objects, and every byte fetched is counted. A request that
fails stops the shard (rerun redoes it) instead of ending it as a broken one.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fsspec.implementations.memory import MemoryFileSystem
from fsspec.spec import AbstractBufferedFile

import curate.io.location as location_module
from curate.errors import CurateError
from curate.io.formats.detect import find_shards, reader_for
from curate.io.formats.registry import WRITERS
from curate.io.location import RemoteReadError, RemotePath
from curate.schemas.sample import Sample, SampleError
from curate.synthetic.scenes import render_scene

PROTOCOL = "rangedmem"
BLOCK = 4 * 1024  # small requests, so that "before the whole file" means something on a small shard


class RangedFile(AbstractBufferedFile):
    """A read-only object served by ranges, as s3fs's files are; counts what it fetched."""

    def _fetch_range(self, start: int, end: int) -> bytes:
        data = self.fs.store[self.path].getvalue()[start:end]
        if self.fs.fail_after is not None and self.fs.fetched + len(data) > self.fs.fail_after:
            raise ConnectionResetError("connection reset by peer")
        type(self.fs).fetched += len(data)
        return data


class RangedMemoryFS(MemoryFileSystem):
    """The memory store behind ranged requests (writes go to the plain memory store)."""

    protocol = PROTOCOL
    fetched = 0
    fail_after: int | None = None

    @classmethod
    def _strip_protocol(cls, path):
        return super()._strip_protocol(str(path).replace(f"{PROTOCOL}://", "memory://", 1))

    def _open(self, path, mode="rb", block_size=None, autocommit=True, cache_options=None, **kwargs):
        if "r" not in mode:
            return super()._open(path, mode, block_size, autocommit, cache_options, **kwargs)
        return RangedFile(self, self._strip_protocol(path), mode, block_size=block_size or BLOCK,
                          cache_type=kwargs.get("cache_type", "readahead"), cache_options=cache_options)


@pytest.fixture
def bucket(monkeypatch):
    fsspec.register_implementation(PROTOCOL, RangedMemoryFS, clobber=True)
    monkeypatch.setattr(location_module, "STREAM_BLOCK", BLOCK)
    monkeypatch.setattr(RangedMemoryFS, "fetched", 0)
    monkeypatch.setattr(RangedMemoryFS, "fail_after", None)
    fs = fsspec.filesystem(PROTOCOL)
    yield fs
    fs.rm("/streamed", recursive=True)


def scene_samples(count: int, shard_id: str = "00001") -> list[Sample]:
    """Rendered PNG scenes, for the embedding test (a shard of 40 spans tens of requests)."""
    samples = []
    for i in range(count):
        scene = render_scene(i, size=192, image_format="PNG")
        samples.append(Sample(key=f"{shard_id}/{i:04d}", image=scene.image, text=scene.caption))
    return samples


def opaque_samples(count: int, *, size: int) -> list[Sample]:
    """Samples whose image bytes are never decoded by readers: random, so nothing compresses."""
    return [Sample(key=f"00001/{i:04d}", image=os.urandom(size), text=f"caption {i}") for i in range(count)]


def put(fs, name: str, data: bytes) -> RemotePath:
    fs.pipe(f"/streamed/{name}", data)
    return RemotePath(f"{PROTOCOL}://streamed/{name}")


def tar_bytes(tmp_path: Path, samples: list[Sample]) -> bytes:
    with WRITERS["webdataset"](tmp_path / "00001.tar") as writer:
        for sample in samples:
            writer.write(sample)
    return (tmp_path / "00001.tar").read_bytes()


def parquet_bytes(samples: list[Sample], *, rows_per_group: int) -> bytes:
    """img2dataset's layout: it writes a row group per 100 buffered samples."""
    table = pa.table({"key": [s.key.split("/")[1] for s in samples], "jpg": [s.image for s in samples],
                      "caption": [s.text for s in samples]})
    buffer = io.BytesIO()
    pq.write_table(table, buffer, row_group_size=rows_per_group)
    return buffer.getvalue()


def first_sample_and_rest(url: RemotePath) -> tuple[int, list]:
    """Bytes fetched when the reader handed out its first sample, and every record."""
    [shard] = find_shards([url])
    records = iter(reader_for(shard))
    first = next(records)
    fetched_then = RangedMemoryFS.fetched
    return fetched_then, [first, *records]


@pytest.mark.parametrize("kind", ["webdataset", "parquet"])
def test_a_remote_shard_yields_its_first_sample_long_before_it_is_all_fetched(bucket, tmp_path, kind):
    """A Parquet reader hands out batches of 64 rows: it needs the row groups holding them."""
    samples = opaque_samples(400, size=5_000)
    data = tar_bytes(tmp_path, samples) if kind == "webdataset" else parquet_bytes(samples, rows_per_group=16)
    url = put(bucket, f"00001.{'tar' if kind == 'webdataset' else 'parquet'}", data)
    assert len(data) > 200 * BLOCK
    RangedMemoryFS.fetched = 0  # detection read names (and a Parquet footer); count from the reader on
    fetched_at_first, records = first_sample_and_rest(url)
    assert 0 < fetched_at_first < len(data) / 4
    assert [r.image for r in records] == [s.image for s in samples]  # and then every sample, whole
    assert RangedMemoryFS.fetched < 1.2 * len(data)  # each byte fetched about once


def test_a_tar_reaches_the_model_before_its_end_is_fetched(bucket, tmp_path, tiny_encoders, monkeypatch):
    """Not only read: decoded and encoded. The image tower's first batch comes from part of the
    file, and no whole-file copy is made first."""
    import curate.io.mirror as mirror_module
    from curate.pipelines.embed import EmbedWorker
    from curate.schemas.config.flow import EmbedConfig

    url = put(bucket, "00001.tar", tar_bytes(tmp_path, scene_samples(40)))
    [shard] = find_shards([url])
    monkeypatch.setattr(mirror_module, "download", lambda *_: pytest.fail("a streamed shard was copied"))
    worker = EmbedWorker(EmbedConfig(inputs=(url,), out=tmp_path / "run", encoders=tiny_encoders, batch_size=4,
                                     workers=0))
    seen: list[int] = []
    encode = worker.encoders.image.encode
    worker.encoders.image.encode = lambda pixels: (seen.append(RangedMemoryFS.fetched), encode(pixels))[1]
    RangedMemoryFS.fetched = 0
    try:
        outcome = worker.run(shard)
    finally:
        worker.close()
    assert outcome.pairs == 40 and len(seen) == 10
    assert seen[0] < bucket.size("/streamed/00001.tar") / 4 < seen[-1]


@pytest.mark.parametrize("kind", ["webdataset", "parquet"])
def test_a_failed_request_stops_the_shard_instead_of_marking_it_broken(bucket, tmp_path, kind):
    samples = opaque_samples(60, size=20_000)
    data = tar_bytes(tmp_path, samples) if kind == "webdataset" else parquet_bytes(samples, rows_per_group=8)
    url = put(bucket, f"00001.{'tar' if kind == 'webdataset' else 'parquet'}", data)
    [shard] = find_shards([url])
    RangedMemoryFS.fail_after = RangedMemoryFS.fetched + len(data) // 2
    with pytest.raises(RemoteReadError, match=r"Reading rangedmem://streamed/00001\.\w+ failed .*ConnectionResetError"):
        records = list(reader_for(shard))
        assert not any(isinstance(r, SampleError) for r in records), "a transport failure became an error row"
    assert issubclass(RemoteReadError, CurateError)  # one line on the command line, not a traceback


def test_local_shards_are_still_opened_as_files(tmp_path):
    tar_bytes(tmp_path, scene_samples(2))
    with location_module.open_in_place(tmp_path / "00001.tar") as handle:
        assert isinstance(handle, io.BufferedReader) and os.path.samefile(handle.name, tmp_path / "00001.tar")


def test_a_url_tar_learns_its_meta_from_its_head_and_names_a_field_it_could_not_keep(bucket, tmp_path, caplog):
    """The meta of a tar at a URL is typed from its first request's members, read once: the
    head's fields are typed as a local read types them, a field first met later is named in a
    warning, and every sample still comes out."""
    samples = [Sample(key=s.key, image=s.image, text=s.text,
                      meta={"seed": i, **({"late": "x"} if i == 150 else {})})
               for i, s in enumerate(opaque_samples(200, size=5_000))]
    data = tar_bytes(tmp_path, samples)
    [shard] = find_shards([put(bucket, "00001.tar", data)])
    RangedMemoryFS.fetched = 0
    reader = reader_for(shard)
    schema = reader.meta_schema()
    records = list(reader)
    assert "seed" in schema.names and schema.field("seed").type == pa.int64() and "late" not in schema.names
    assert [r.meta["seed"] for r in records] == list(range(200))
    assert "late" in caplog.text and "00001/0150" in caplog.text
    assert RangedMemoryFS.fetched < 1.2 * len(data)  # the head was not fetched twice
    [local] = find_shards([tmp_path / "00001.tar"])
    assert "late" in reader_for(local).meta_schema().names  # a local tar is typed from all of it
